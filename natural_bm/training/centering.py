"""Centering: Melchior, Fischer & Wiskott (2016), "How to center deep Boltzmann machines".

A centred Boltzmann machine subtracts an offset mu_k from the states of every layer in its energy::

    E(x) = -sum_(i,j) (x_i - mu_i)^T W_ij (x_j - mu_j) - sum_k (x_k - mu_k)^T c_k  (+ the units' own terms)

It describes the same distributions as the uncentred machine, whose biases are
b_k = c_k - sum_(edges at k) W mu_other (``kernels.offset_bias_shift``; the
energies differ by a constant), but gradient ascent in the centred parameters
(W, c) is better conditioned: the paper trains DBMs without greedy
pre-training this way.

How natural_bm does it: the model keeps its **uncentred** parameters, so every
estimator, sampler and saved model file uses them unchanged, through that one
exact conversion. Each update, given the algorithm's statistics differences
(dW, db) and the batch's data-dependent means:

1. c_k = b_k + shift_k(W, mu), the centred biases;
2. the centred gradients: dW_ij - mu_i db_j^T - db_i mu_j^T
   (``kernels.centred_weight_gradient``); the biases' gradients are db;
3. the optimiser steps (W, c): momentum and Adam's moments live in the
   centred coordinates;
4. b_k = c_k - shift_k(W, mu) with the updated W and the same offsets;
5. the offsets move: mu <- (1 - rate) mu + rate * target, the target being
   the data-dependent means (``"data"``, the paper's recommendation), the
   model's means (``"model"``: data means minus db) or their average
   (``"average"``). Moving the offsets leaves the model unchanged: the next
   update re-expresses the same b with the new offsets, which is the paper's
   reparameterisation c <- c + W (mu_new - mu).

The offsets start at the means of the data-dependent posterior (mean-field
for deeper models) of up to 1,000 training rows. They are saved with the
training state (``state_dict``), so a resumed run continues bit-identically.
"""

from __future__ import annotations

import torch

from natural_bm.kernels import centred_weight_gradient, offset_bias_shift

__all__ = ["Centering", "get_centering"]

TARGETS = ("data", "model", "average")

#: training rows whose posterior means initialise the offsets
INIT_ROWS = 1000


class Centering:
    """Offsets for every layer, updated as exponential moving averages (see the module docstring).

    Args:
        rate: the offsets' moving-average rate per update, in [0, 1] (the paper uses 0.01 to 0.1;
            0 keeps the initial offsets).
        target: ``"data"``, ``"model"`` or ``"average"``: which means the offsets follow.

    ``offsets``: one (n_k,) tensor per layer, None before the first ``fit``.
    """

    def __init__(self, rate: float = 0.01, target: str = "data") -> None:
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"centering `rate` must be in [0, 1], got {rate}.")
        if target not in TARGETS:
            raise ValueError(f"centering `target` must be one of {TARGETS}, got {target!r}.")
        self.rate, self.target = rate, target
        self.offsets: list[torch.Tensor] | None = None

    def get_config(self) -> dict:
        return {"rate": self.rate, "target": self.target}

    def state_dict(self) -> dict:
        return {**self.get_config(), "offsets": None if self.offsets is None else [o.clone() for o in self.offsets]}

    def load_state_dict(self, state: dict) -> None:
        self.rate, self.target = float(state["rate"]), str(state["target"])
        offsets = state.get("offsets")
        self.offsets = None if offsets is None else [o.clone() for o in offsets]

    # ------------------------------------------------------------------ training
    def check_model(self, model) -> None:
        if any(f != 1.0 for f in model.input_factors.values()):
            raise ValueError("centering needs a plain energy (no input_factors, which greedy pre-training uses); "
                             "centre the DBM itself, not its pre-training RBMs.")

    def on_fit_begin(self, model, x: torch.Tensor) -> None:
        """Set the offsets (if none yet, or of another model's shape) from up to ``INIT_ROWS`` rows of ``x``."""
        self.check_model(model)
        if self.offsets is not None and [len(o) for o in self.offsets] == list(model.layer_sizes):
            self.offsets = [o.to(device=x.device, dtype=x.dtype) for o in self.offsets]
            return
        mu, _ = model.mean_field(x[:INIT_ROWS])
        self.offsets = [m.mean(0) for m in mu]

    def centred_biases(self, model) -> list[torch.Tensor]:
        """c_k = b_k + shift_k(W, mu) of every layer: the centred biases of the model's parameters."""
        weights = model.weights
        return [model.bias(k) + offset_bias_shift(k, weights, self.offsets) for k in range(model.n_layers)]

    def apply(self, model, params: dict, grads: dict, data_means: list[torch.Tensor], optimizer) -> None:
        """One centred update of ``params`` (the model's uncentred parameters, by name, changed in place)
        with the uncentred statistics differences ``grads`` and the batch's data-dependent means
        (one (n_k,) tensor per layer); then the offsets' moving-average step."""
        mu = self.offsets
        names = [model.bias_name(k) for k in range(model.n_layers)]
        centred = dict(params)
        for name, c in zip(names, self.centred_biases(model), strict=True):
            centred[name] = c
        grads = dict(grads)
        db = [grads[name] for name in names]
        for i, j in model.edges:
            name = model.weight_name(i, j)
            grads[name] = centred_weight_gradient(grads[name], db[i], db[j], mu[i], mu[j])
        optimizer.step(centred, grads)
        weights = model.weights
        for k, name in enumerate(names):
            params[name].copy_(centred[name] - offset_bias_shift(k, weights, mu))
        if self.rate:
            if self.target == "data":
                targets = data_means
            elif self.target == "model":
                targets = [m - d for m, d in zip(data_means, db, strict=True)]
            else:
                targets = [m - 0.5 * d for m, d in zip(data_means, db, strict=True)]
            self.offsets = [torch.lerp(o, t.to(o.dtype), self.rate) for o, t in zip(mu, targets, strict=True)]


def get_centering(centering) -> Centering | None:
    """A ``Centering`` from None/False (none), True (the defaults), a dict of its arguments or an instance."""
    if centering is None or centering is False:
        return None
    if centering is True:
        return Centering()
    if isinstance(centering, Centering):
        return centering
    if isinstance(centering, dict):
        return Centering(**centering)
    raise ValueError(f"`centering` must be None, True, a dict such as {{'rate': 0.01, 'target': 'data'}} "
                     f"or a Centering, got {centering!r}.")
