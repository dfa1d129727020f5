"""Weight decay: L1 and L2 penalties on the weights (not the biases)."""

from __future__ import annotations

import torch


def apply_weight_decay(
    grads: dict[str, torch.Tensor],
    params: dict[str, torch.Tensor],
    l1: float = 0.0,
    l2: float = 0.0,
    names: tuple[str, ...] = ("W",),
) -> dict[str, torch.Tensor]:
    """Add the gradient of -(l1 |W|_1 + l2/2 |W|_2^2) to ``grads`` (in place) and return it.

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
