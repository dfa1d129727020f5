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

``anneal`` runs it eagerly with uniforms from a PCG64 ``RandomSource``, or
in ``torch.compile``d chunks of ``STEPS_PER_CALL`` steps with uniforms from
in-graph SplitMix64 counters; either way on the CPU in float32 the products
go through oneDNN with packed weights (``natural_bm.onednn``), as in RBM AIS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from natural_bm import onednn
from natural_bm.compiling import CompiledFunction
from natural_bm.estimators.tempering import softplus_increment
from natural_bm.rng import RandomSource, counter_uniform


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


# ---------------------------------------------------------------------------
# The annealing step. The structure (edges, kept layers K, summed layers S,
# layer sizes) is passed as static tuples; tensors go in tuples aligned with
# it. Weights W of edge (i, j) are (n_i, n_j); ``tok_fwd[e]`` names W packed
# for x_i W, ``tok_bwd[e]`` W^T for x_j W^T (None: torch.addmm).


def _input(k, states, weights, edges, bias, tok_fwd, tok_bwd):
    """Total input to layer k from the filled layers of ``states``: bias + sum of products, (R, n_k)."""
    out = None
    for e, (i, j) in enumerate(edges):
        if j == k and states[i] is not None:
            x, w, tok = states[i], weights[e], tok_fwd[e]
        elif i == k and states[j] is not None:
            x, w, tok = states[j], weights[e].T, tok_bwd[e]
        else:
            continue
        term = onednn.addmm(bias if out is None else torch.zeros_like(bias), x, w, tok)
        out = term if out is None else out + term
    return out


def _dbm_ais_math(states, log_w, weights, b_A, b_B, b_new, b_old, uniforms, structure, tok_fwd, tok_bwd):
    """One DBM AIS step: the log-weight increment at (b_new vs b_old), then a Gibbs sweep (summed
    layers S, then kept layers K) at b_new with the given uniforms (one tensor per layer)."""
    edges, K, S = structure
    bn = b_new.to(b_B[0].dtype)
    db = (b_new - b_old).to(b_B[0].dtype)
    inc = torch.zeros_like(log_w)
    for k in K:
        inc = inc + (db * (states[k] @ (b_B[k] - b_A[k]))).to(log_w.dtype)
    probs = {}
    for s in S:
        rel = _input(s, states, weights, edges, b_B[s], tok_fwd, tok_bwd) - b_A[s]
        p = torch.sigmoid(b_A[s] + bn * rel)
        inc = inc + softplus_increment(p, db * rel).sum(1).to(log_w.dtype)
        probs[s] = p
    log_w = log_w + inc
    states = list(states)
    for s in S:
        states[s] = (uniforms[s] < probs[s]).to(probs[s].dtype)
    for k in K:
        a = b_A[k] + bn * (_input(k, states, weights, edges, b_B[k], tok_fwd, tok_bwd) - b_A[k])
        states[k] = (uniforms[k] < torch.sigmoid(a)).to(a.dtype)
    for s in S:
        states[s] = None  # only the kept layers carry over
    return tuple(states), log_w


def _step_uniforms(key, offset, rows: int, sizes, dtype):
    """Uniforms for every layer of one step: counter offset + r * sum(sizes) + (layer start) + j."""
    total = sum(sizes)
    out, start = [], 0
    for n in sizes:
        idx = (torch.arange(rows, device=key.device, dtype=torch.int64).view(rows, 1) * total
               + torch.arange(n, device=key.device, dtype=torch.int64) + start)
        out.append(counter_uniform(idx + offset, key, dtype))
        start += n
    return out


def _dbm_ais_steps(states, log_w, weights, b_A, b_B, betas, key, offset, structure, sizes, tok_fwd, tok_bwd):
    """``len(betas) - 1`` consecutive steps along ``betas``, uniforms from counters ``offset`` on."""
    rows = log_w.shape[0]
    per_step = rows * sum(sizes)
    dtype = b_B[0].dtype
    for t in range(betas.shape[0] - 1):
        u = _step_uniforms(key, offset + t * per_step, rows, sizes, dtype)
        states, log_w = _dbm_ais_math(states, log_w, weights, b_A, b_B, betas[t + 1], betas[t], u, structure,
                                      tok_fwd, tok_bwd)
    return states, log_w


#: DBM AIS steps per compiled call
STEPS_PER_CALL = 2

_COMPILED_STEPS = CompiledFunction(_dbm_ais_steps, "DBM AIS step")


def anneal(model, states: list, schedule: torch.Tensor, b_A, log_w_dtype, progress: bool,
           gen: RandomSource | None = None, key: int | None = None, packed_weights: bool = True):
    """Run the chains (kept layers filled in ``states``) along ``schedule``; returns log weights.

    With ``gen``: eagerly, one step at a time, uniforms from ``gen`` (per
    step the summed layers', then the kept layers', in layer order). With
    ``key``: compiled chunks of ``STEPS_PER_CALL`` steps and an eager tail,
    uniforms from SplitMix64 counters of stream ``key``. Either way the step
    is ``_dbm_ais_math``, with the products through oneDNN's packed weights
    where ``packed_weights`` and ``onednn.pack`` apply.
    """
    K = tuple(model.parity_layers(kept_parity(model)))
    S = tuple(model.parity_layers(1 - kept_parity(model)))
    edges = tuple(tuple(e) for e in model.edges)
    structure = (edges, K, S)
    weights = tuple(model.weights[e].detach() for e in edges)
    b_A, b_B = tuple(b_A), tuple(b.detach() for b in model.biases)
    st = tuple(states[k] if k in K else None for k in range(model.n_layers))
    sizes = tuple(model.layer_sizes)
    dtype = b_B[0].dtype
    dev = model.device
    n = st[K[0]].shape[0]
    log_w = torch.zeros(n, dtype=log_w_dtype, device=dev)
    sched = schedule.to(device=dev, dtype=torch.float64)
    n_steps = len(sched) - 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, desc="DBM AIS", unit="beta", mininterval=0.5, leave=False)
    # W of each edge for x_i W, then W^T for x_j W^T
    with torch.no_grad(), onednn.packed_tokens(weights + tuple(W.T for W in weights), n, packed_weights) as toks:
        tok_fwd, tok_bwd = toks[: len(edges)], toks[len(edges):]
        k = 1
        if key is not None:
            per_step = n * sum(sizes)
            key_t = torch.tensor(key, device=dev, dtype=torch.int64)
            offsets = torch.arange(n_steps + 1, device=dev, dtype=torch.int64) * per_step
            while k + STEPS_PER_CALL - 1 <= n_steps:
                st, log_w = _COMPILED_STEPS(st, log_w, weights, b_A, b_B, sched[k - 1 : k + STEPS_PER_CALL], key_t,
                                            offsets[k], structure, sizes, tok_fwd, tok_bwd)
                k += STEPS_PER_CALL
                if bar is not None:
                    bar.update(STEPS_PER_CALL)
        for j in range(k, n_steps + 1):  # eagerly: all steps with ``gen``, the tail with the counters
            if key is not None:
                u = _step_uniforms(key_t, offsets[j], n, sizes, dtype)
            else:
                u = [None] * len(sizes)
                for layer in S + K:
                    u[layer] = gen.uniform((n, sizes[layer]), dtype)
            st, log_w = _dbm_ais_math(st, log_w, weights, b_A, b_B, sched[j], sched[j - 1], u, structure,
                                      tok_fwd, tok_bwd)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return log_w
