"""AIS steps: one step's log-weight increment and Gibbs transition, as pure tensor functions.

AIS anneals the layers of one parity K ("kept") with the other parity S
("summed") marginalised out analytically, from a base model A (no weights,
biases ``b_A``: zero except the visible layer's for the data base model) at
beta = 0 to the model B at beta = 1::

    log p*_beta(x_K) = sum_{k in K} ((1 - beta) b_A,k + beta b_B,k)^T x_k
                       + sum_{s in S} sum_units softplus(b_A,s + beta (input_s(x_K) - b_A,s))

At beta = 0 this is the base model, whose log Z is sum over all units of
softplus(b_A). The transition at beta is one block-Gibbs sweep of the
tempered joint: S given K, then K given S.

Two step kernels share one signature and one engine (``ais_engine``):

* ``pair_step``: the two-layer case in Salakhutdinov & Murray's closed form
  (K = the visible layer, S = the hidden layer): two products per step, the
  hidden input reused by the weight update and the hidden sample;
* ``layered_step``: any depth and topology (K = the parity with fewer units).

Signature: ``step(state, log_w, consts, b_new, b_old, u_S, u_K, static)
-> (state, log_w)``. ``state`` is the tuple of the kept layers' states,
``u_S`` (R, units of S) and ``u_K`` (R, units of K) the step's uniforms,
``consts`` the model's constants, its weights as matrix products
(``mm(bias, x) = bias + x @ W``, e.g. ``natural_bm.onednn.Product``), and
``static`` the structure (Python ints and tuples, constant under
``torch.compile``). The increment is computed without cancellation
(``natural_bm.kernels.sigmoid_and_softplus_increment``) and summed into ``log_w`` in its
own dtype (float64).
"""

from __future__ import annotations

import torch

from natural_bm.kernels import sigmoid_and_softplus_increment
from natural_bm.models.units import one_hot_from_uniform
from natural_bm.validation import as_data_tensor, warn_user


def annealed_parity(model, parity: int | str = "auto") -> int:
    """The parity K that AIS anneals. ``"auto"``: the visible layer's (0) for two layers, as Salakhutdinov
    & Murray do; otherwise the parity with fewer units (odd on ties), e.g. h1 of a 784-500-1000 DBM.
    0 or 1 chooses it; the other parity is summed out analytically, so its layers must be of a kind
    with a closed-form sum (binary, softmax, Gaussian: all of this library's units)."""
    if parity == "auto":
        return 0 if model.n_layers == 2 else model.enumerated_parity()
    if isinstance(parity, bool) or parity not in (0, 1):
        raise ValueError(f"`parity` must be 'auto', 0 (anneal the even layers, the visible one among them) or "
                         f"1 (anneal the odd layers), got {parity!r}.")
    return int(parity)


def base_visible_bias(model, data=None, base: str = "data") -> tuple[torch.Tensor, str]:
    """The base model's visible biases and the base actually used (``"data"`` or ``"uniform"``).

    ``"data"``: for binary visible units logit((sum x + 1) / (n + 2)) of the ``data`` (n, n_visible),
    the smoothed pixel means (Salakhutdinov & Murray's base-rate model); for Gaussian ones mean / sigma^2,
    independent Gaussians at the data's means. ``"uniform"``: zeros. ``"data"`` without data falls back
    to ``"uniform"`` with a warning."""
    if base not in ("data", "uniform"):
        raise ValueError(f"`base` must be 'data' or 'uniform', got {base!r}.")
    device, dtype = model.device, model.dtype
    if base == "data" and data is None:
        warn_user("AIS base='data' needs `data`; using the uniform base model.")
        base = "uniform"
    if base == "uniform":
        return torch.zeros(model.n_visible, device=device, dtype=dtype), base
    x = as_data_tensor(data, "data", model.n_visible, device=device, dtype=torch.float64,
                       value_range=model.data_range)
    if model.binary_visible:
        p = (x.sum(0) + 1.0) / (x.shape[0] + 2.0)
        return (torch.log(p) - torch.log1p(-p)).to(dtype), base
    sigma = model.units[0].sigma.to(torch.float64)
    return (x.mean(0) / sigma**2).to(dtype), base


def base_biases(model, base_vbias: torch.Tensor) -> list[torch.Tensor]:
    """The base model's biases, one tensor per layer: ``base_vbias`` for the visible layer, zeros elsewhere."""
    out = [torch.zeros(n, device=model.device, dtype=model.dtype) for n in model.layer_sizes]
    out[0] = base_vbias
    return out


def log_z_base(model, b_A: list[torch.Tensor]) -> float:
    """log Z of the base model (independent units, input b_A per layer), nats: the sum of each layer's
    log partition (softplus(b_A) per binary unit, sigma^2 b_A^2 / 2 + log(sqrt(2 pi) sigma) per Gaussian one)."""
    return float(sum(u.log_partition(b.double()[None])[0] for u, b in zip(model.units, b_A, strict=True)))


def unit_kinds(model) -> tuple[str, ...]:
    """Each layer's unit type (static structure for the compiled steps): its name, and for softmax
    units the group size too (``"softmax:10"``)."""
    return tuple(f"softmax:{u.group_size}" if u.name == "softmax" else u.name for u in model.units)


def unit_sigmas(model) -> tuple:
    """Each layer's standard deviations (Gaussian layers; None for binary ones), detached."""
    return tuple(getattr(u, "sigma", None) for u in model.units)


#: uniforms are kept away from 0 before the inverse normal CDF (24-bit counters can give exactly 0)
_U_FLOOR = 2.0**-25


def _summed_increment(kind: str, a_new, da, sigma):
    """(log partition(a_new) - log partition(a_new - da) summed over units (R,), E[x | a_new]) of a summed
    layer at beta = 1 (the tempering interpolates the inputs): softplus differences without cancellation
    for binary units, sigma^2 da (2 a_new - da) / 2 for Gaussian ones."""
    if kind == "bernoulli":
        p, inc = sigmoid_and_softplus_increment(a_new, da)  # one exponential for both
        return inc.sum(1), p
    if kind.startswith("softmax"):
        # logsumexp(a_new) - logsumexp(a_old) = -log sum_i p_i e^{-da_i} = -log1p(sum_i p_i expm1(-da_i))
        k = int(kind.split(":")[1])
        rows = a_new.shape[0]
        p = torch.softmax(a_new.reshape(rows, -1, k), -1)
        inc = -torch.log1p((p * torch.expm1(-da.reshape(rows, -1, k))).sum(-1)).sum(1)
        return inc, p.reshape(a_new.shape)
    var = sigma * sigma
    return (0.5 * var * da * (2 * a_new - da)).sum(1), var * a_new


def _draw(kind: str, mean, u, sigma):
    """A draw given the conditional mean ``mean`` and uniforms ``u``: u < p for binary units, the inverse
    normal CDF for Gaussian ones (one uniform per unit)."""
    if kind == "bernoulli":
        return (u < mean).to(mean.dtype)
    if kind.startswith("softmax"):  # one draw per group, from the group's first uniform
        k = int(kind.split(":")[1])
        rows = mean.shape[0]
        return one_hot_from_uniform(mean.reshape(rows, -1, k), u.reshape(rows, -1, k)[..., 0]).reshape(mean.shape)
    return mean + sigma * torch.special.ndtri(u.clamp_min(_U_FLOOR))


def _mean(kind: str, a, sigma):
    if kind == "bernoulli":
        return torch.sigmoid(a)
    if kind.startswith("softmax"):
        k = int(kind.split(":")[1])
        return torch.softmax(a.reshape(a.shape[0], -1, k), -1).reshape(a.shape)
    return sigma * sigma * a


# ----------------------------------------------------------------------------- two layers


def pair_step(state, log_w, consts, b_new, b_old, u_S, u_K, static):
    """One step of a two-layer model: the weight update at (b_new vs b_old), then v -> h -> v at b_new.

    ``state`` = (v,) (R, nv); ``consts`` = (mm_W, mm_Wt: the products ``bias + x @ W`` and
    ``bias + x @ W^T`` (W (nv, nh)), c (nh,), b_A, b_B, d_b = b_B - b_A (nv,), sigma_v, sigma_h (None
    for binary layers)); ``static`` = (unit type of v, unit type of h); ``u_S`` (R, nh), ``u_K`` (R, nv).
    """
    (v,) = state
    mm_W, mm_Wt, c, b_A, b_B, d_b, sigma_v, sigma_h = consts
    kind_v, kind_h = static
    x = mm_W(c, v)  # (R, nh), shared by the weight update and the hidden sample
    bn = b_new.to(x.dtype)
    db = (b_new - b_old).to(x.dtype)
    inc_h, mean_h = _summed_increment(kind_h, bn * x, db * x, sigma_h)
    # row sums, not a matrix-vector product: BLAS gemv rounds a row differently with the number of rows,
    # and a run's weight must not depend on how many runs share its call (sharded AIS)
    log_w = log_w + (db * (v * d_b).sum(1)).to(log_w.dtype) + inc_h.to(log_w.dtype)
    h = _draw(kind_h, mean_h, u_S, sigma_h)
    act = (1 - bn) * b_A + bn * mm_Wt(b_B, h)
    v = _draw(kind_v, _mean(kind_v, act, sigma_v), u_K, sigma_v)
    return (v,), log_w


# ----------------------------------------------------------------------------- any depth


def _input(k, states, up, down, edges, bias):
    """Total input to layer k from the filled layers of ``states``: bias + sum of products, (R, n_k).
    ``up[e]``/``down[e]``: the products ``bias + x @ W_e`` and ``bias + x @ W_e^T`` of edge e."""
    out = None
    for e, (i, j) in enumerate(edges):
        if j == k and states[i] is not None:
            x, mm = states[i], up[e]
        elif i == k and states[j] is not None:
            x, mm = states[j], down[e]
        else:
            continue
        term = mm(bias if out is None else torch.zeros_like(bias), x)
        out = term if out is None else out + term
    return out


def _split(u, layers, sizes):
    """Columns of ``u`` spread over ``layers`` in order: {layer: (R, n_layer)}."""
    out, start = {}, 0
    for k in layers:
        out[k] = u[:, start : start + sizes[k]]
        start += sizes[k]
    return out


def layered_step(state, log_w, consts, b_new, b_old, u_S, u_K, static):
    """One step of a layered model: the increment at (b_new vs b_old), then a sweep S | K, K | S at b_new.

    ``state`` = the kept layers' states in order of K; ``consts`` = (products ``bias + x @ W`` per edge,
    products ``bias + x @ W^T`` per edge, b_A per layer, b_B per layer, sigma per layer (None for binary
    layers)); ``static`` = (edges, K, S, layer sizes, unit type per layer).
    """
    up, down, b_A, b_B, sigmas = consts
    edges, K, S, sizes, kinds = static
    states = [None] * len(sizes)
    for n, k in enumerate(K):
        states[k] = state[n]
    bn = b_new.to(b_B[0].dtype)
    db = (b_new - b_old).to(b_B[0].dtype)
    inc = torch.zeros_like(log_w)
    for k in K:
        inc = inc + (db * (states[k] * (b_B[k] - b_A[k])).sum(1)).to(log_w.dtype)  # row sums (see pair_step)
    means = {}
    for s in S:
        rel = _input(s, states, up, down, edges, b_B[s]) - b_A[s]
        inc_s, means[s] = _summed_increment(kinds[s], b_A[s] + bn * rel, db * rel, sigmas[s])
        inc = inc + inc_s.to(log_w.dtype)
    log_w = log_w + inc
    us, uk = _split(u_S, S, sizes), _split(u_K, K, sizes)
    for s in S:
        states[s] = _draw(kinds[s], means[s], us[s], sigmas[s])
    for k in K:
        a = b_A[k] + bn * (_input(k, states, up, down, edges, b_B[k]) - b_A[k])
        states[k] = _draw(kinds[k], _mean(kinds[k], a, sigmas[k]), uk[k], sigmas[k])
    return tuple(states[k] for k in K), log_w
