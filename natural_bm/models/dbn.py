"""Deep belief networks: a greedily trained stack of RBMs used as a generative model.

Layers x_0 (visible), x_1, ..., x_L. The top two layers form an RBM
(``rbms[-1]``); below it every layer is generated from the one above through
the directed conditionals of the lower RBMs, p(x_{l} | x_{l+1}) =
prod sigmoid(b_l + W_l x_{l+1}). The recognition distributions used to
infer the layers, Q(x_{l+1} | x_l) = prod sigmoid(c_l + x_l W_l), are the
lower RBMs' hidden conditionals (Hinton, Osindero & Teh 2006).

Train it with ``natural_bm.training.pretrain_dbn`` (each RBM on the hidden
probabilities of the one below). Its log-likelihood has the variational
lower bound of Salakhutdinov & Murray (2008, section 4)::

    log p(v) >= E_Q [ sum_{l < L-1} log p(x_l | x_{l+1}) - sum_{l < L-1} log Q(x_{l+1} | x_l)
                      - F_top(x_{L-1}) ] - log Z_top

with F_top the top RBM's free energy of its visible layer and Z_top its
partition function (``log_prob_bound``; log Z_top from exact enumeration or
AIS on ``top``).
"""

from __future__ import annotations

import torch

from natural_bm.kernels import reconstruction_cross_entropy
from natural_bm.models.rbm import RBM
from natural_bm.rng import RandomSource, bernoulli
from natural_bm.validation import as_data_tensor, check_positive_int

Generator = RandomSource | torch.Generator | None


class DBN(torch.nn.Module):
    """A stack of binary RBMs: ``rbms[l]`` joins layers l and l + 1; the last one is the top RBM.

    Args:
        layer_sizes: units per layer, visible first, e.g. (784, 500, 2000) (at least 3 layers;
            two layers are an RBM).
        init, weight_scale, seed, device, dtype: as for ``RBM`` (RBM l uses seed + l).
    """

    def __init__(self, layer_sizes, init: str = "gaussian", weight_scale: float = 0.01, seed: int | None = None,
                 device=None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        sizes = [check_positive_int(n, "layer_sizes[i]") for n in layer_sizes]
        if len(sizes) < 3:
            raise ValueError(f"a DBN needs at least 3 layers (two are an RBM), got layer_sizes={list(layer_sizes)}.")
        self.layer_sizes = sizes
        self.rbms = torch.nn.ModuleList(
            RBM(sizes[i], sizes[i + 1], init=init, weight_scale=weight_scale,
                seed=None if seed is None else seed + i, device=device, dtype=dtype)
            for i in range(len(sizes) - 1))

    @property
    def top(self) -> RBM:
        """The top RBM (layers L-1 and L), an undirected model whose log Z the likelihood bound needs."""
        return self.rbms[-1]

    @property
    def n_visible(self) -> int:
        return self.layer_sizes[0]

    def transform(self, v: torch.Tensor) -> torch.Tensor:
        """Top-layer probabilities from a deterministic up-pass of probabilities: (n, layer_sizes[-1])."""
        x = as_data_tensor(v, "v", self.n_visible, device=self.top.device, dtype=self.top.dtype)
        with torch.no_grad():
            for rbm in self.rbms:
                x = rbm.prob_h_given_v(x)
        return x

    def sample(self, n: int, n_gibbs: int = 1000, generator: Generator = None) -> torch.Tensor:
        """``n`` samples of v by ancestral sampling: ``n_gibbs`` Gibbs steps in the top RBM (started
        from uniform random states), then a down pass through the lower RBMs; returns the visible
        probabilities of the last step (n, n_visible) and, as ``last_sample``, the binary draw."""
        n, n_gibbs = check_positive_int(n, "n"), check_positive_int(n_gibbs, "n_gibbs")
        top = self.top
        with torch.no_grad():
            x = bernoulli(torch.full((n, top.n_visible), 0.5, device=top.device, dtype=top.dtype), generator)
            x = top.gibbs(x, n_gibbs, generator=generator)
            p = None
            for rbm in reversed(self.rbms[:-1]):
                p = rbm.prob_v_given_h(x)
                x = bernoulli(p, generator)
        self.last_sample = x
        return p

    def log_prob_bound(self, v: torch.Tensor, log_z_top: float, n_samples: int = 10,
                       generator: Generator = None) -> torch.Tensor:
        """Salakhutdinov & Murray's lower bound on log p(v) (see the module docstring): (n,) nats.

        The expectation over Q is estimated from ``n_samples`` up-passes of sampled hidden states (an
        unbiased estimate of the bound); the recognition entropies are exact for each sampled parent.
        ``v`` must be binary.
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        top = self.top
        v = as_data_tensor(v, "v", self.n_visible, device=top.device, dtype=top.dtype)
        total = torch.zeros(v.shape[0], device=v.device, dtype=torch.float64)
        with torch.no_grad():
            for _ in range(n_samples):
                x, acc = v, torch.zeros_like(total)
                for rbm in self.rbms[:-1]:
                    q = rbm.prob_h_given_v(x)
                    h = bernoulli(q, generator)
                    acc -= reconstruction_cross_entropy(rbm.visible_input(h), x).double()  # log p(x | h)
                    acc += rbm.units[1].entropy(q).double()  # -E_Q log Q(h | x)
                    x = h
                acc -= top.free_energy(x).double()  # log p*(x) of the top RBM
                total += acc
        return total / n_samples - float(log_z_top)

    def get_config(self) -> dict:
        r = self.rbms[0]
        return {"layer_sizes": list(self.layer_sizes), "init": r.init, "weight_scale": r.weight_scale}

    def __repr__(self) -> str:
        return f"DBN(layer_sizes={self.layer_sizes})"
