"""Weight decay (L1 and L2 penalties on the weights, not the biases) and the max-norm constraint."""

from __future__ import annotations

import torch


def apply_weight_decay(
    grads: dict[str, torch.Tensor],
    params: dict[str, torch.Tensor],
    l1: float = 0.0,
    l2: float = 0.0,
    names: tuple[str, ...] = ("W",),
) -> dict[str, torch.Tensor]:
    """Add the gradient of ``-(l1 |W|_1 + l2/2 |W|_2^2)`` to ``grads`` (in place) and return it.

    The penalised objective is mean log-likelihood - l1 * sum|W| - l2/2 * sum W^2,
    so the ascent direction gains -l1 * sign(W) - l2 * W for each named weight.
    """
    if l1 < 0 or l2 < 0:
        raise ValueError(f"`l1` and `l2` must be >= 0, got l1={l1}, l2={l2}.")
    if l1 == 0 and l2 == 0:
        return grads
    for name in names:
        if name in grads:
            if l2:
                grads[name].add_(params[name], alpha=-l2)
            if l1:
                grads[name].add_(torch.sign(params[name]), alpha=-l1)
    return grads


def apply_max_norm(params: dict[str, torch.Tensor], max_norm: float, names: tuple[str, ...]) -> None:
    """Rescale (in place) every column of each named (n_i, n_j) weight matrix whose L2 norm exceeds
    ``max_norm`` to norm ``max_norm``: the incoming weights of each unit of the upper layer j (Keras's
    ``MaxNorm(axis=0)``; Srivastava et al. 2014). Columns within the bound are left bit-identical
    (multiplied by exactly 1). No host synchronisation, so a CUDA graph can capture it."""
    if not max_norm > 0:
        raise ValueError(f"`max_norm` must be > 0, got {max_norm}.")
    for name in names:
        w = params[name]
        norms = torch.linalg.vector_norm(w, dim=0)
        w.mul_(torch.where(norms > max_norm, max_norm / norms, torch.ones_like(norms)).to(w.dtype))
