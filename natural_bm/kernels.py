"""Pure maths kernels shared by the models, the eager algorithms and the compiled steps.

Each is a plain tensor function with no state, so eager code calls it and
``torch.compile`` traces it: the maths is written once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["EMULATED_BFLOAT16", "affine", "binary_codes", "centred_weight_gradient", "offset_bias_shift", "product",
           "reconstruction_cross_entropy", "row_weights", "scale_by_beta", "sigmoid_and_softplus_increment",
           "softplus_increment", "statistics_difference", "to_product"]


def reconstruction_cross_entropy(logits: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``v`` (n, d) under independent Bernoulli units with logits ``logits`` (n, d):
    -sum_i [v_i log sigmoid(a_i) + (1 - v_i) log(1 - sigmoid(a_i))] = sum_i [softplus(a_i) - v_i a_i] per row,
    (n,) nats (stable in a: torch's softplus is log1p(exp(a)) below 20 and a above)."""
    return F.softplus(logits).sub_(logits * v).sum(1)  # softplus(a) - v a per unit


#: ``product_dtype`` of bfloat16's numerics computed in float32: operands rounded to bfloat16, float32
#: products and sums, the result rounded to bfloat16 (``training.precision``: "bfloat16-emulated")
EMULATED_BFLOAT16 = "bfloat16-emulated"


def to_product(t: torch.Tensor, product_dtype) -> torch.Tensor:
    """``t`` as an operand of a product in ``product_dtype``: converted to it (torch.bfloat16), or for
    ``EMULATED_BFLOAT16`` rounded to bfloat16 and kept in its own dtype."""
    if product_dtype == EMULATED_BFLOAT16:
        return t.to(torch.bfloat16).to(t.dtype)
    return t.to(product_dtype)


def product(a: torch.Tensor, b: torch.Tensor, product_dtype, out_dtype: torch.dtype) -> torch.Tensor:
    """``a @ b`` of operands made by ``to_product``, in ``out_dtype``: the bfloat16 product's result
    rounded to bfloat16 as the hardware's is (for ``EMULATED_BFLOAT16`` explicitly)."""
    result = a @ b
    if product_dtype == EMULATED_BFLOAT16:
        result = result.to(torch.bfloat16)
    return result.to(out_dtype)


def affine(bias: torch.Tensor, x: torch.Tensor, W: torch.Tensor, alpha: float = 1.0,
           product_dtype=None, out: torch.Tensor | None = None) -> torch.Tensor:
    """``bias + alpha x W``: (n, m) in ``x``'s dtype from x (n, k), W (k, m), bias (m,). With
    ``product_dtype`` (torch.bfloat16 or ``EMULATED_BFLOAT16``) the product runs in that precision
    (``W`` given as ``to_product`` made it, x rounded here) and is added to the bias in ``x``'s dtype
    (``training.precision``). ``out``: an (n, m) tensor to write the result into (a reused buffer)
    instead of a new one."""
    if product_dtype is None:
        return torch.addmm(bias, x, W, alpha=alpha, out=out)
    return torch.add(bias, product(to_product(x, product_dtype), W, product_dtype, x.dtype), alpha=alpha,
                     out=out)


def statistics_difference(v_pos: torch.Tensor, h_pos: torch.Tensor, v_neg: torch.Tensor, h_neg: torch.Tensor,
                          product_dtype=None, out: torch.Tensor | None = None,
                          weights: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Positive minus negative sufficient statistics of a bipartite pair: (<v h^T>, <v>, <h>) differences.

    Shapes: v_pos (n_pos, n_v), h_pos (n_pos, n_h), v_neg (n_neg, n_v), h_neg (n_neg, n_h); the two phases
    may have different numbers of rows (PCD: batch and chains). The weight term is two matrix products,
    the second accumulating into the first with the 1/n scalings as the BLAS's alpha and beta (no copies,
    no pass over the (n_v, n_h) result). With ``product_dtype`` (bfloat16) the weight term is one product of
    the stacked phases, [v_pos; v_neg]^T [h_pos / n_pos; -h_neg / n_neg], in that dtype: the two phases'
    statistics nearly cancel, so they are subtracted inside the float32 accumulation and only the
    difference is rounded (rounding each phase's statistics first would leave an error of 2^-9 of the
    statistics themselves, often a tenth of their difference). The result comes back in the inputs'
    dtype; the means stay in the inputs' dtype. ``out``: an (n_v, n_h) tensor for dW (a reused buffer).
    The mean differences are two matrix-vector products each, x_pos^T w_pos + x_neg^T w_neg (the scaling
    inside the BLAS: two operations, against four for scaled column sums, 6 against 11 us on the digits'
    10-row blocks) with the row weights w_pos = 1 / n_pos (n_pos,) and w_neg = -1 / n_neg (n_neg,):
    ``weights``, made here when None (a caller that steps often passes them made once:
    ``row_weights(n_pos, n_neg, dtype, device)``).
    Returns (dW (n_v, n_h), dv (n_v,), dh (n_h,)).
    """
    n_pos, n_neg = v_pos.shape[0], v_neg.shape[0]
    w_pos, w_neg = weights or row_weights(n_pos, n_neg, v_pos.dtype, v_pos.device)
    if product_dtype is None:
        dW = torch.mm(v_pos.T, h_pos, out=out).addmm_(v_neg.T, h_neg, beta=1.0 / n_pos, alpha=-1.0 / n_neg)
    else:
        pd = product_dtype
        h_scaled = to_product(torch.cat([h_pos * (1.0 / n_pos), h_neg * (-1.0 / n_neg)]), pd)
        dW = product(to_product(torch.cat([v_pos, v_neg]), pd).T, h_scaled, pd, v_pos.dtype)
        if out is not None:
            dW = out.copy_(dW)
    dv = torch.mv(v_pos.T, w_pos).addmv_(v_neg.T, w_neg)
    dh = torch.mv(h_pos.T, w_pos).addmv_(h_neg.T, w_neg)
    return dW, dv, dh


def row_weights(n_pos: int, n_neg: int, dtype: torch.dtype, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``statistics_difference``'s row weights: (n_pos,) filled with 1 / n_pos and (n_neg,) with -1 / n_neg."""
    return (torch.full((n_pos,), 1.0 / n_pos, dtype=dtype, device=device),
            torch.full((n_neg,), -1.0 / n_neg, dtype=dtype, device=device))


def binary_codes(start: int, stop: int, n: int, device=None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Binary codes of the integers [start, stop) on ``n`` bits: (stop - start, n), most significant first."""
    idx = torch.arange(start, stop, device=device, dtype=torch.int64)
    shifts = torch.arange(n - 1, -1, -1, device=device, dtype=torch.int64)
    return ((idx[:, None] >> shifts) & 1).to(dtype)


def softplus_increment(a_new: torch.Tensor, da: torch.Tensor) -> torch.Tensor:
    """softplus(a_new) - softplus(a_old) per unit, from a_new and da = a_new - a_old (the AIS log-weight
    increment of a summed-out binary unit); ``sigmoid_and_softplus_increment``'s second value."""
    return sigmoid_and_softplus_increment(a_new, da)[1]


def sigmoid_and_softplus_increment(a_new: torch.Tensor, da: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sigmoid(a_new), softplus(a_new) - softplus(a_old))`` per unit, from a_new and da = a_new - a_old:
    the conditional mean and the AIS log-weight increment of a summed-out binary unit, from one exponential::

        softplus(a_new) - softplus(a_old) = -log1p(r expm1(-da))           (a_new <= 0, r = sigmoid(a_new))
                                          = da - log1p(r expm1(da))          (a_new > 0,  r = sigmoid(-a_new))

    with r = sigmoid(-abs(a_new)) = e / (1 + e), e = exp(-abs(a_new)) <= 1, so 1 + r expm1(+-da) never
    cancels and the tiny steps of an AIS schedule keep full relative precision in the input dtype (the naive
    difference of two softplus values cancels catastrophically there; the one-sided form
    -log1p(sigmoid(a_new) expm1(-da)) cancels for a large step towards a saturated unit, e.g. a_old = 30,
    a_new = 60 in a 10-beta schedule). sigmoid(a_new) is r or 1 / (1 + e) from the same e (no second
    exponential, and no 1 - r rounding). Exact in float32 unless one step moves a unit's input by more than
    about 70 nats (r underflows, or expm1 overflows): no schedule of this library comes near that.
    """
    positive = a_new > 0
    e = torch.exp(-a_new.abs())
    q = 1.0 / (1.0 + e)  # sigmoid(abs(a_new))
    r = e * q  # sigmoid(-abs(a_new))
    inc = -torch.log1p(r * torch.expm1(torch.where(positive, da, -da)))
    return torch.where(positive, q, r), torch.where(positive, da + inc, inc)


def scale_by_beta(x: torch.Tensor, beta) -> torch.Tensor:
    """``beta * x`` for an inverse temperature ``beta`` (float or tensor), skipping the product at beta = 1."""
    if isinstance(beta, float) and beta == 1.0:
        return x
    return beta * x


def offset_bias_shift(k: int, weights: dict, offsets) -> torch.Tensor:
    """sum over the edges (i, j) at layer k of W mu_other: the term that links layer k's centred and
    uncentred biases (Melchior, Fischer & Wiskott 2016).

    The centred energy -sum_(i,j) (x_i - mu_i)^T W_ij (x_j - mu_j) - sum_k (x_k - mu_k)^T c_k (plus the
    units' own terms) equals the uncentred one with biases b_k = c_k - shift_k, up to a constant, so
    both give the same p(x). ``weights``: {(i, j): W_ij (n_i, n_j)}; ``offsets``: one (n_k,) tensor per
    layer. Returns (n_k,).
    """
    out = torch.zeros_like(offsets[k])
    for (i, j), W in weights.items():
        if i == k:
            out = out + W @ offsets[j]
        elif j == k:
            out = out + offsets[i] @ W
    return out


def centred_weight_gradient(dW: torch.Tensor, db_i: torch.Tensor, db_j: torch.Tensor, mu_i: torch.Tensor,
                            mu_j: torch.Tensor) -> torch.Tensor:
    """The centred gradient of W_ij from the uncentred statistics differences:
    <(x_i - mu_i)(x_j - mu_j)^T>_data - <...>_model = dW - mu_i db_j^T - db_i mu_j^T, exactly
    (db: <x>_data - <x>_model of each layer). Shapes (n_i, n_j), (n_i,), (n_j,), (n_i,), (n_j,)."""
    return dW - torch.outer(mu_i, db_j) - torch.outer(db_i, mu_j)
