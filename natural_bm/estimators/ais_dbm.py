"""AIS for DBMs: anneal one parity of layers, the other summed out analytically.

The base model A has no weights and biases ``b_A`` (zero except, for the
data base model, the visible layer's). Intermediate distributions over the
kept layers K (the parity with fewer units; for a 784-500-1000 DBM, h1 alone)
with the summed layers S marginalised::

    log p*_beta(x_K) = sum_{k in K} ((1 - beta) b_A,k + beta b_B,k)^T x_k
                       + sum_{s in S} sum_units softplus(b_A,s + beta (input_s(x_K) - b_A,s))

where input_s is the model's total input to layer s (its bias included).
At beta = 0 this is the base model, whose log Z is sum over all units of
softplus(b_A). The transition at beta is one block-Gibbs sweep of the
tempered joint: S given K, then K given S.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from natural_bm.estimators.tempering import softplus_increment
from natural_bm.rng import RandomSource


def kept_parity(model) -> int:
    """The parity (0 even, 1 odd) with fewer units: the annealing state."""
    return min((1, 0), key=lambda p: sum(model.layer_sizes[k] for k in model.parity_layers(p)))


def base_biases(model, base_vbias: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.zeros(n, device=model.device, dtype=model.dtype) for n in model.layer_sizes]
    out[0] = base_vbias
    return out


def log_z_base(b_A: list[torch.Tensor]) -> float:
    return float(sum(F.softplus(b.double()).sum() for b in b_A))


def initial_states(model, b_A, n_runs: int, gen: RandomSource) -> list:
    states = [None] * model.n_layers
    for k in model.parity_layers(kept_parity(model)):
        states[k] = gen.bernoulli(torch.sigmoid(b_A[k]).expand(n_runs, -1).contiguous())
    return states


def anneal(model, states: list, schedule: torch.Tensor, b_A, gen: RandomSource, log_w_dtype, progress: bool):
    """Run the chains (kept layers filled in ``states``) along ``schedule``; returns log weights."""
    K = model.parity_layers(kept_parity(model))
    S = model.parity_layers(1 - kept_parity(model))
    b_B = model.biases
    n = states[K[0]].shape[0]
    log_w = torch.zeros(n, dtype=log_w_dtype, device=model.device)
    sched = schedule.to(torch.float64)
    iterator = range(1, len(sched))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="DBM AIS", unit="beta", mininterval=0.5, leave=False)
    states = list(states)
    with torch.no_grad():
        for t in iterator:
            b_new, db = float(sched[t]), float(sched[t] - sched[t - 1])
            inc = torch.zeros(n, dtype=log_w_dtype, device=model.device)
            for k in K:
                inc += db * (states[k] @ (b_B[k] - b_A[k])).to(log_w_dtype)
            probs = {}
            for s in S:
                rel = model.layer_input(s, states) - b_A[s]  # d a_s / d beta
                p = torch.sigmoid(b_A[s] + b_new * rel)
                inc += softplus_increment(p, db * rel).sum(1).to(log_w_dtype)
                probs[s] = p
            log_w += inc
            for s in S:
                states[s] = gen.bernoulli(probs[s])
            for k in K:
                a = b_A[k] + b_new * (model.layer_input(k, states) - b_A[k])
                states[k] = gen.bernoulli(torch.sigmoid(a))
    return log_w
