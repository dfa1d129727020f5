"""Bernoulli restricted Boltzmann machine.

Energy of a joint state (v, h), v in {0,1}^n_visible, h in {0,1}^n_hidden::

    E(v, h) = -v^T W h - vbias^T v - hbias^T h

At inverse temperature ``beta`` the model is p_beta(v, h) = exp(-beta E(v, h)) / Z(beta).
Summing out h gives the free energy (nats)::

    F_beta(v) = -beta vbias^T v - sum_j softplus(beta (hbias_j + v^T W[:, j]))

so that p_beta(v) = exp(-F_beta(v)) / Z(beta). All log quantities are natural
logarithms (nats).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from natural_bm.kernels import statistics_difference
from natural_bm.models.layered import LayeredBM
from natural_bm.rng import RandomSource, bernoulli, randint
from natural_bm.validation import check_positive_int

Generator = RandomSource | torch.Generator | None

__all__ = ["RBM", "bernoulli"]


class RBM(LayeredBM):
    """Restricted Boltzmann machine: the two-layer case of ``LayeredBM``, with parameters
    ``W``, ``vbias`` and ``hbias`` and closed-form fast paths for that case.

    Args:
        n_visible: number of visible units (784 for MNIST).
        n_hidden: number of hidden units.
        init: weight initialisation, ``"gaussian"`` (N(0, weight_scale^2)) or
            ``"orthogonal"`` (a random orthogonal matrix times ``weight_scale``).
        weight_scale: scale of the initial weights.
        seed: seed of the initialisation (None: a fresh one).
        up_factor, down_factor: multipliers of the weights in the hidden and
            visible inputs (1 for a plain RBM). Greedy DBM pre-training uses 2
            (Salakhutdinov & Hinton 2009's doubled bottom-up or top-down input).
        device, dtype: where the parameters live; CPU float32 by default.
        units: the unit types of the (visible, hidden) layers (default: Bernoulli both).

    Attributes:
        W: (n_visible, n_hidden) weights.
        vbias: (n_visible,) visible biases.
        hbias: (n_hidden,) hidden biases.
    """

    param_names = ("W", "vbias", "hbias")

    @property
    def supports_compiled_steps(self) -> bool:
        """The fused CD/PCD steps (``training.rbm_steps``) are written for binary units."""
        return self.all_binary

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        init: str = "gaussian",
        weight_scale: float = 0.01,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        up_factor: float = 1.0,
        down_factor: float = 1.0,
        units=None,
    ) -> None:
        n_visible = check_positive_int(n_visible, "n_visible")
        n_hidden = check_positive_int(n_hidden, "n_hidden")
        self.up_factor, self.down_factor = float(up_factor), float(down_factor)
        super().__init__([n_visible, n_hidden], None, init, weight_scale, seed, device, dtype, units=units,
                         weight_names={(0, 1): "W"}, bias_names=["vbias", "hbias"],
                         input_factors={(0, 1): self.up_factor, (1, 0): self.down_factor})

    # ------------------------------------------------------------------ config
    @property
    def n_hidden(self) -> int:
        return self.layer_sizes[1]

    def get_config(self) -> dict:
        return {
            "n_visible": self.n_visible,
            "n_hidden": self.n_hidden,
            "init": self.init,
            "weight_scale": self.weight_scale,
            "up_factor": self.up_factor,
            "down_factor": self.down_factor,
        } | ({"units": self.units_config()} if not self.all_binary else {})

    # ------------------------------------------------------------------ maths (the core's, by layer)
    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        """Total input to the hidden units, up_factor * v W + hbias: (n, n_hidden)."""
        return self.layer_input(1, [v, None])

    def visible_input(self, h: torch.Tensor) -> torch.Tensor:
        """Total input to the visible units, down_factor * h W^T + vbias: (n, n_visible)."""
        return self.layer_input(0, [None, h])

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) for each row: (n,) in nats (at beta = 1)."""
        return self.joint_energy([v, h])

    def prob_h_given_v(self, v: torch.Tensor, beta: float | torch.Tensor = 1.0) -> torch.Tensor:
        """p(h_j = 1 | v) = sigmoid(beta (v W + hbias)_j): (n, n_hidden)."""
        return self.prob_layer(1, [v, None], beta)

    def prob_v_given_h(self, h: torch.Tensor, beta: float | torch.Tensor = 1.0) -> torch.Tensor:
        """p(v_i = 1 | h) = sigmoid(beta (h W^T + vbias)_i): (n, n_visible)."""
        return self.prob_layer(0, [None, h], beta)

    def sample_h(
        self, v: torch.Tensor, beta: float | torch.Tensor = 1.0, generator: Generator = None
    ) -> torch.Tensor:
        """A sample of h ~ p(h | v): (n, n_hidden)."""
        return self.sample_layer(1, [v, None], beta, generator)

    def sample_v(
        self, h: torch.Tensor, beta: float | torch.Tensor = 1.0, generator: Generator = None
    ) -> torch.Tensor:
        """A sample of v ~ p(v | h): (n, n_visible)."""
        return self.sample_layer(0, [None, h], beta, generator)

    def filters(self) -> torch.Tensor:
        """``W``: (n_visible, n_hidden)."""
        return self.W

    def layer_parameter_names(self, layer: int) -> list[str]:
        """All three parameters: an RBM has one schedulable layer (``layer`` = 0)."""
        if layer != 0:
            raise ValueError(f"RBM has one schedulable layer, got layer={layer}.")
        return list(self.param_names)

    def statistics(self, v: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch means of the sufficient statistics: <v h^T>, <v>, <h>.

        These are minus the derivatives of the energy with respect to
        ``W``, ``vbias`` and ``hbias``, so the log-likelihood gradient is the
        positive-phase statistics minus the negative-phase ones.
        """
        return self.sufficient_statistics([v, h])

    def statistics_difference(
        self, v_pos: torch.Tensor, h_pos: torch.Tensor, v_neg: torch.Tensor, h_neg: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``statistics(v_pos, h_pos) - statistics(v_neg, h_neg)`` (the ascent direction).

        Rows of the two phases may differ in number (PCD: batch vs. chains).
        The weight term is one matrix product when the phases have equal size.
        """
        dW, dv, dh = statistics_difference(v_pos, h_pos, v_neg, h_neg)
        out = {"W": dW, "vbias": dv, "hbias": dh}
        if self._sigma_layers:  # learned visible standard deviations
            out["log_sigma_0"] = self.units[0].sigma_statistic(v_pos) - self.units[0].sigma_statistic(v_neg)
        return out

    # ------------------------------------------------------------------ metrics
    def pseudo_log_likelihood(self, v: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        """Stochastic pseudo-log-likelihood of each row: (n,) nats.

        The estimator of ``BoltzmannMachine.pseudo_log_likelihood`` (same
        random unit per row), with one matrix product instead of two:
        flipping unit i (v_i -> 1 - v_i, a change d = 1 - 2 v_i) moves the
        hidden input by up_factor d W[i], so
        F(v~) - F(v) = -d vbias_i - sum_j [softplus(x_j + up_factor d W_ij) - softplus(x_j)].
        """
        self._check_binary_visible("pseudo-likelihood")
        idx = randint(v.shape[1], (v.shape[0],), generator, v.device)
        d = 1 - 2 * v.gather(1, idx[:, None])  # (n, 1)
        x = self.hidden_input(v)
        x_flip = torch.addcmul(x, d * self.up_factor, self.W.index_select(0, idx))
        df = -d[:, 0] * self.vbias.index_select(0, idx) - (F.softplus(x_flip) - F.softplus(x)).sum(1)
        return v.shape[1] * F.logsigmoid(df)

    def reconstruction_loss(
        self, v: torch.Tensor, generator: Generator = None
    ) -> torch.Tensor:
        """Cross-entropy of v and its reconstruction p(v | h), h ~ p(h | v): (n,) nats per image."""
        return self.units[0].reconstruction_error(self.visible_input(self.sample_h(v, generator=generator)), v)

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """Hidden features for ``transform``: p(h = 1 | v), (n, n_hidden)."""
        return self.prob_h_given_v(v)
