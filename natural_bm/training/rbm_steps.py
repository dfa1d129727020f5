"""CD-k and PCD-k steps of a binary RBM as pure kernels: eager and compiled.

``cd_kernel`` and ``pcd_kernel`` are the whole step of a Bernoulli-Bernoulli
RBM in a few tensor operations: the data batch and the persistent chains share
their products (rows stacked), the sigmoid, the comparison with a uniform and
the statistics follow without the layer-by-layer bookkeeping of the general
model. Where the uniforms come from is an argument (``Uniforms``):

* the eager algorithms (``algorithms.py``) pass ``source_uniforms``, blocks
  drawn from the fit loop's ``RandomSource`` (numpy's PCG64 on the CPU) in the
  order the layer-by-layer path draws them, so a seed gives the same run
  through either (up to the rounding of stacked products);
* ``rbm_cd_step`` and ``rbm_pcd_step``, which ``torch.compile`` fuses into one
  graph per batch (``compiled_cd_step``, ``compiled_pcd_step``), generate them
  in the graph from SplitMix64 counters (``natural_bm.rng.gibbs_uniforms``;
  about 1 ns per number on the CPU, against 2 ns for numpy's PCG64 and 8.5 ns
  for torch's in-graph ``rand_like``). Their stream key per batch is drawn
  from the fit loop's ``RandomSource``, so runs stay reproducible from their
  seed; the numbers differ from the eager path's, so the same seed gives a
  different, equally valid run with ``jit_compile`` on and off.

Shapes: v0 (B, n_visible) data batch; chains (C, n_visible) persistent
chains; W (n_visible, n_hidden); b (n_visible,); c (n_hidden,); key 0-d
int64; idx (rows, max(n_visible, n_hidden)) int64 counters 0..rows*M-1.
Returned gradients are ascent directions for the mean log-likelihood; losses
are nats per row.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from natural_bm.compiling import CompiledFunction
from natural_bm.kernels import affine, reconstruction_cross_entropy, statistics_difference
from natural_bm.rng import gibbs_uniforms, uniform

#: ``uniforms(step) -> (u_h, u_v)``: the U[0, 1) numbers of one Gibbs step of a kernel
Uniforms = Callable[[int], tuple[torch.Tensor, torch.Tensor]]

__all__ = ["CompiledSteps", "Uniforms", "cd_kernel", "compiled_cd_step", "compiled_pcd_step", "pcd_kernel",
           "rbm_cd_step", "rbm_pcd_step", "source_uniforms"]


def _uniforms(idx, key, step: int, nv: int, nh: int, dtype):
    """Uniforms of Gibbs step ``step`` (counters offset by step * idx.numel())."""
    return gibbs_uniforms(idx + step * idx.numel(), key, nv, nh, dtype)


def cd_kernel(v0, W, b, c, k: int, up: float, down: float, uniforms: Uniforms, product_dtype=None):
    """CD-k of a binary RBM from the batch ``v0``: returns ``(dW, dvbias, dhbias, loss, p0)``.

    The chain starts at the positive phase's hidden sample; the negative statistics use the hidden
    probabilities of the k-th visible sample; ``loss`` (B,) is the cross-entropy of ``v0`` and its
    reconstruction sigmoid(down h W^T + b), nats per row; ``p0`` (B, n_hidden) the positive phase's
    hidden probabilities. ``uniforms(s)`` gives Gibbs step s's ``(u_h (B, n_hidden), u_v (B, n_visible))``.
    ``product_dtype``: the dtype of the matrix products (``training.precision``; None: the inputs').
    """
    pd = product_dtype
    Wp = W if pd is None else W.to(pd)
    u_h, u_v = uniforms(0)
    p0 = torch.sigmoid(affine(c, v0, Wp, up, pd))
    h = u_h.lt_(p0)
    a = affine(b, h, Wp.T, down, pd)
    loss = reconstruction_cross_entropy(a, v0)
    v = u_v.lt_(torch.sigmoid(a))
    for s in range(1, k):
        u_h, u_v = uniforms(s)
        h = u_h.lt_(torch.sigmoid(affine(c, v, Wp, up, pd)))
        v = u_v.lt_(torch.sigmoid(affine(b, h, Wp.T, down, pd)))
    p1 = torch.sigmoid(affine(c, v, Wp, up, pd))
    dW, db, dc = statistics_difference(v0, p0, v, p1, pd)
    return dW, db, dc, loss, p0


def pcd_kernel(v0, chains, W, b, c, k: int, up: float, down: float, uniforms: Uniforms, product_dtype=None):
    """PCD-k of a binary RBM: returns ``(dW, dvbias, dhbias, loss, new_chains, p0)``.

    The data batch and the chains share their first two products (rows stacked as [v0; chains]), so
    PCD-1 costs the same three forward products as CD-1. ``uniforms(0)`` gives
    ``(u_h (B + C, n_hidden), u_v (C, n_visible))`` (the data's hidden sample, for the loss, and the
    chains' first step), ``uniforms(s)`` for s >= 1 the chains' ``(u_h (C, n_hidden), u_v (C, n_visible))``.
    ``product_dtype`` as for ``cd_kernel``.
    """
    pd = product_dtype
    Wp = W if pd is None else W.to(pd)
    B = v0.shape[0]
    u_h, u_v = uniforms(0)
    p = torch.sigmoid(affine(c, torch.cat([v0, chains]), Wp, up, pd))
    h = u_h.lt_(p)
    a = affine(b, h, Wp.T, down, pd)
    loss = reconstruction_cross_entropy(a[:B], v0)
    v = u_v.lt_(torch.sigmoid(a[B:]))
    for s in range(1, k):
        u_h, u_v = uniforms(s)
        h = u_h.lt_(torch.sigmoid(affine(c, v, Wp, up, pd)))
        v = u_v.lt_(torch.sigmoid(affine(b, h, Wp.T, down, pd)))
    p_neg = torch.sigmoid(affine(c, v, Wp, up, pd))
    dW, db, dc = statistics_difference(v0, p[:B], v, p_neg, pd)
    return dW, db, dc, loss, v, p[:B]


def rbm_cd_step(v0, W, b, c, key, idx, k: int, up: float, down: float, product_dtype=None):
    """CD-k with in-graph counter uniforms (``idx`` has B rows): ``(dW, dvbias, dhbias, loss)``
    (``cd_kernel``'s, without the probabilities)."""
    nv, nh = W.shape
    return cd_kernel(v0, W, b, c, k, up, down, lambda s: _uniforms(idx, key, s, nv, nh, v0.dtype),
                     product_dtype)[:4]


def rbm_pcd_step(v0, chains, W, b, c, key, idx, k: int, up: float, down: float, product_dtype=None):
    """PCD-k with in-graph counter uniforms (``idx`` has B + C rows):
    ``(dW, dvbias, dhbias, loss, new_chains)`` (``pcd_kernel``'s, without the probabilities)."""
    nv, nh = W.shape
    B = v0.shape[0]

    def uniforms(s: int):
        if s == 0:
            u_h, u_v = _uniforms(idx, key, 0, nv, nh, v0.dtype)
            return u_h, u_v[B:]
        return _uniforms(idx[B:], key, s, nv, nh, v0.dtype)

    return pcd_kernel(v0, chains, W, b, c, k, up, down, uniforms, product_dtype)[:5]


def source_uniforms(generator, shapes_h, shapes_v, dtype, device) -> Uniforms:
    """``uniforms`` for the kernels from a ``RandomSource`` (or ``torch.Generator``): step s draws
    ``shapes_h(s)`` hidden blocks, then ``shapes_v(s)`` visible ones, in that order (the order in which
    the model's ``sample_h`` and ``sample_v`` draw them, so the eager kernels consume the stream exactly
    as the layer-by-layer path does); several blocks of one step are stacked by rows."""

    def draw(shape):
        return uniform(shape, dtype, generator, device)

    def uniforms(s: int):
        hs = [draw(shape) for shape in shapes_h(s)]
        vs = [draw(shape) for shape in shapes_v(s)]
        return (hs[0] if len(hs) == 1 else torch.cat(hs)), (vs[0] if len(vs) == 1 else torch.cat(vs))

    return uniforms


compiled_cd_step = CompiledFunction(rbm_cd_step, "CD step")
compiled_pcd_step = CompiledFunction(rbm_pcd_step, "PCD step")


class CompiledSteps:
    """Which batches of one ``fit`` run the compiled steps, and their counters (cached).

    The first batch claims its row count: batches of that size run compiled, others (the last,
    partial batch of an epoch) eagerly, so nothing is recompiled. The counters are the
    (rows, max(n_visible, n_hidden)) int64 tensor 0, 1, ... that the in-graph uniforms are keyed by.
    """

    def __init__(self) -> None:
        self.rows: int | None = None
        self._counters: torch.Tensor | None = None

    def accepts(self, rows: int) -> bool:
        """Whether a batch of ``rows`` rows runs compiled (the first batch's size claims the slot)."""
        if self.rows is None:
            self.rows = int(rows)
        return int(rows) == self.rows

    def counters(self, rows: int, width: int, device: torch.device) -> torch.Tensor:
        """(rows, width) int64 counters 0, 1, ... on ``device``, reused while the shape stays."""
        idx = self._counters
        if idx is None or tuple(idx.shape) != (rows, width) or idx.device != device:
            idx = self._counters = torch.arange(rows * width, device=device, dtype=torch.int64).view(rows, width)
        return idx
