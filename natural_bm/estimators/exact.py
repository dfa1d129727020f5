"""Exact log partition functions by enumeration (small models only).

For an RBM the smaller layer is enumerated and the other summed out in
closed form. With the hidden layer enumerated::

    log Z = logsumexp_h [ beta hbias^T h + sum_i softplus(beta (vbias + W h)_i) ]

States are generated in chunks of ``chunk_size`` (memory stays bounded) and
combined with a running float64 logsumexp. Cost: 2^min(n_visible, n_hidden)
x max(n_visible, n_hidden) softplus evaluations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from natural_bm.compiling import CompiledFunction
from natural_bm.kernels import binary_codes

MAX_STATES = 2**32


def _chunk_log_p(states, W_T, b_other, b_enum, beta):
    """log p*(states) with the other layer summed out: beta b_enum^T s + sum softplus(beta (s W_T + b_other))."""
    return beta * (states @ b_enum) + F.softplus(beta * torch.addmm(b_other, states, W_T)).sum(1)


_COMPILED_CHUNK = CompiledFunction(_chunk_log_p, "exact log Z chunk")


def _chunk_fn(compile: bool):
    return _COMPILED_CHUNK if compile else _chunk_log_p


def _logsumexp_enumerated(n_enum: int, log_p_fn, chunk_size: int, device, progress: bool) -> float:
    total = 2**n_enum
    acc = torch.tensor(-math.inf, dtype=torch.float64, device=device)
    starts = range(0, total, chunk_size)
    if progress and total > chunk_size * 8:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="exact log Z", unit="chunk")
    for start in starts:
        states = binary_codes(start, min(total, start + chunk_size), n_enum, device, torch.float64)
        acc = torch.logaddexp(acc, torch.logsumexp(log_p_fn(states), 0))
    return float(acc)


def log_partition_exact(
    model,
    beta: float = 1.0,
    chunk_size: int = 2**12,
    device: torch.device | str | None = None,
    progress: bool = True,
    compile: bool | None = None,
) -> float:
    """Exact log Z(beta) of an RBM or DBM in nats, by enumeration (float64).

    Args:
        model: an ``RBM`` (or a model with ``log_partition_exact``).
        beta: inverse temperature.
        chunk_size: states per chunk (memory ~ chunk_size x max layer size x 8 bytes).
        device: where to compute (default: the model's device).
        progress: show a progress bar for long enumerations.
        compile: fuse the per-chunk work with ``torch.compile`` (default: when
            more than 2^16 states are enumerated; 3x faster on the CPU).

    Raises:
        ValueError: more than 2^32 states would be enumerated (use AIS).
    """
    model.check_finite("log_partition_exact")
    if chunk_size < 1:
        raise ValueError(f"`chunk_size` must be >= 1, got {chunk_size}.")
    enum_parity = model.enumerated_parity()
    layers = model.parity_layers(enum_parity)
    n_enum = sum(model.layer_sizes[k] for k in layers)
    if 2**n_enum > MAX_STATES:
        raise ValueError(
            f"exact log Z would enumerate 2^{n_enum} states (> 2^32); "
            "estimate it with natural_bm.estimators.AIS instead."
        )
    device = torch.device(device) if device is not None else model.device
    if model.n_layers > 2 or not model.all_binary:  # the closed form below is for two binary layers
        deep = model.detached_copy(device=device, dtype=torch.float64)

        def log_p_deep(codes: torch.Tensor) -> torch.Tensor:
            return -deep.free_energy_parity(deep.split_codes(codes, layers), sum_out=1 - enum_parity, beta=beta)

        return _logsumexp_enumerated(n_enum, log_p_deep, chunk_size, device, progress)
    # two layers: the closed form below, one fused product per chunk
    W = model.weight(0, 1).detach().to(device=device, dtype=torch.float64)
    b = model.bias(0).detach().to(device=device, dtype=torch.float64)
    c = model.bias(1).detach().to(device=device, dtype=torch.float64)
    if compile is None:
        compile = 2**n_enum > 2**16
    fn = _chunk_fn(compile)
    beta_t = torch.tensor(float(beta), dtype=torch.float64, device=device)
    if enum_parity == 1:  # enumerate h, sum out v
        W_T, b_other, b_enum = W.T.contiguous(), b, c
    else:  # enumerate v, sum out h
        W_T, b_other, b_enum = W, c, b
    last = 2**n_enum % chunk_size

    def log_p(states):
        if compile and last and states.shape[0] == last:
            return _chunk_log_p(states, W_T, b_other, b_enum, beta_t)  # no recompilation for the last chunk
        return fn(states, W_T, b_other, b_enum, beta_t)

    return _logsumexp_enumerated(n_enum, log_p, chunk_size, device, progress)
