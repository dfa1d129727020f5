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
from typing import Any

import torch

from natural_bm.compiling import CompiledFunction
from natural_bm.kernels import affine, reconstruction_cross_entropy, row_weights, statistics_difference, to_product
from natural_bm.rng import RandomSource, gibbs_uniforms, uniform, uniform_

#: ``uniforms(step) -> (u_h, u_v)``: the U[0, 1) numbers of one Gibbs step of a kernel
Uniforms = Callable[[int], tuple[torch.Tensor, torch.Tensor]]

__all__ = ["CompiledSteps", "Uniforms", "Workspace", "cd_kernel", "compiled_cd_step", "compiled_pcd_step", "pcd_kernel",
           "rbm_cd_step", "rbm_pcd_step", "source_uniforms"]


def _uniforms(idx, key, step: int, nv: int, nh: int, dtype):
    """Uniforms of Gibbs step ``step`` (counters offset by step * idx.numel())."""
    return gibbs_uniforms(idx + step * idx.numel(), key, nv, nh, dtype)


class Workspace:
    """Buffers of the eager kernels, reused from batch to batch: one tensor per (name, shape, dtype, device).

    An epoch of full batches and its last, partial one each get their own set, made on first use; after
    the first epoch a step allocates only its small vectors (bias gradients, loss) and, for PCD, the new
    chains (a state that outlives the batch). A buffer is overwritten by the next step that asks for it,
    so the gradients a kernel returns through a workspace are valid until the next call.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The buffer ``name`` of ``shape`` (uninitialised when new)."""
        key = (name, shape, dtype, device)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = torch.empty(shape, dtype=dtype, device=device)
        return buf

    def cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        """What ``make()`` returned the first time ``key`` was asked for (constants, views of buffers)."""
        value = self._buffers.get(key)
        if value is None:
            value = self._buffers[key] = make()
        return value

    def latest(self, name: str, key: tuple, make: Callable[[], Any]) -> Any:
        """``make()``'s value, kept under ``name`` while ``key`` stays the same (one per name: for values
        tied to a run, such as a fit's random source, that must not pile up over many fits)."""
        kept = self._buffers.get(name)
        if kept is None or kept[0] != key:
            kept = self._buffers[name] = (key, make())
        return kept[1]


def _row_weights(workspace: Workspace | None, n_pos: int, n_neg: int, like: torch.Tensor):
    """``statistics_difference``'s row weights, made once per shape in ``workspace`` (None without one)."""
    if workspace is None:
        return None
    return workspace.cached(("row_weights", n_pos, n_neg, like.dtype, like.device),
                            lambda: row_weights(n_pos, n_neg, like.dtype, like.device))


def _buffer(workspace: Workspace | None, name: str, shape: tuple[int, ...], like: torch.Tensor):
    """``workspace``'s buffer ``name`` of ``shape`` in ``like``'s dtype and device; None without a workspace
    (the operation then allocates its result)."""
    return None if workspace is None else workspace.get(name, shape, like.dtype, like.device)


def cd_kernel(v0, W, b, c, k: int, up: float, down: float, uniforms: Uniforms, product_dtype=None,
              workspace: Workspace | None = None):
    """CD-k of a binary RBM from the batch ``v0``: returns ``(dW, dvbias, dhbias, loss, p0)``.

    The chain starts at the positive phase's hidden sample; the negative statistics use the hidden
    probabilities of the k-th visible sample; ``loss`` (B,) is the cross-entropy of ``v0`` and its
    reconstruction sigmoid(down h W^T + b), nats per row; ``p0`` (B, n_hidden) the positive phase's
    hidden probabilities. ``uniforms(s)`` gives Gibbs step s's ``(u_h (B, n_hidden), u_v (B, n_visible))``,
    which the kernel overwrites with the samples (so step s + 1's hidden input is computed before its
    uniforms are drawn: a source may refill the same buffers). ``product_dtype``: the dtype of the matrix
    products (``training.precision``; None: the inputs'). ``workspace``: buffers for the products and
    the weight gradient, reused across calls (``dW`` and ``p0`` are then valid until the next call).
    """
    pd, ws = product_dtype, workspace
    Wp = W if pd is None else to_product(W, pd)
    (B, nv), nh = v0.shape, W.shape[1]
    u_h, u_v = uniforms(0)
    p0 = torch.sigmoid_(affine(c, v0, Wp, up, pd, out=_buffer(ws, "p0", (B, nh), v0)))
    h = u_h.lt_(p0)
    a = affine(b, h, Wp.T, down, pd, out=_buffer(ws, "a", (B, nv), v0))
    loss = reconstruction_cross_entropy(a, v0)
    v = u_v.lt_(torch.sigmoid_(a))
    for s in range(1, k):
        x = affine(c, v, Wp, up, pd, out=_buffer(ws, "x", (B, nh), v0))
        u_h, u_v = uniforms(s)
        h = u_h.lt_(torch.sigmoid_(x))
        v = u_v.lt_(torch.sigmoid_(affine(b, h, Wp.T, down, pd, out=_buffer(ws, "a", (B, nv), v0))))
    p1 = torch.sigmoid_(affine(c, v, Wp, up, pd, out=_buffer(ws, "p1", (B, nh), v0)))
    dW, db, dc = statistics_difference(v0, p0, v, p1, pd, out=_buffer(ws, "dW", tuple(W.shape), W),
                                       weights=_row_weights(ws, B, B, v0))
    return dW, db, dc, loss, p0


def pcd_kernel(v0, chains, W, b, c, k: int, up: float, down: float, uniforms: Uniforms, product_dtype=None,
               workspace: Workspace | None = None):
    """PCD-k of a binary RBM: returns ``(dW, dvbias, dhbias, loss, new_chains, p0)``.

    The data batch and the chains share their first two products (rows stacked as [v0; chains]), so
    PCD-1 costs the same three forward products as CD-1. ``uniforms(0)`` gives
    ``(u_h (B + C, n_hidden), u_v (C, n_visible))`` (the data's hidden sample, for the loss, and the
    chains' first step), ``uniforms(s)`` for s >= 1 the chains' ``(u_h (C, n_hidden), u_v (C, n_visible))``;
    they are drawn after the rows they replace are read (the chains are stacked first), as for
    ``cd_kernel``. ``product_dtype`` and ``workspace`` as for ``cd_kernel``; ``new_chains`` is a tensor
    of its own either way (the state outlives the call).
    """
    pd, ws = product_dtype, workspace
    Wp = W if pd is None else to_product(W, pd)
    (B, nv), C, nh = v0.shape, chains.shape[0], W.shape[1]
    stacked = torch.cat([v0, chains], out=_buffer(ws, "stacked", (B + C, nv), v0))
    u_h, u_v = uniforms(0)
    p = torch.sigmoid_(affine(c, stacked, Wp, up, pd, out=_buffer(ws, "p", (B + C, nh), v0)))
    h = u_h.lt_(p)
    a = affine(b, h, Wp.T, down, pd, out=_buffer(ws, "a", (B + C, nv), v0))
    loss = reconstruction_cross_entropy(a[:B], v0)
    v = u_v.lt_(torch.sigmoid_(a[B:]))
    for s in range(1, k):
        x = affine(c, v, Wp, up, pd, out=_buffer(ws, "x", (C, nh), v0))
        u_h, u_v = uniforms(s)
        h = u_h.lt_(torch.sigmoid_(x))
        v = u_v.lt_(torch.sigmoid_(affine(b, h, Wp.T, down, pd, out=_buffer(ws, "a_chains", (C, nv), v0))))
    p_neg = torch.sigmoid_(affine(c, v, Wp, up, pd, out=_buffer(ws, "p_neg", (C, nh), v0)))
    dW, db, dc = statistics_difference(v0, p[:B], v, p_neg, pd, out=_buffer(ws, "dW", tuple(W.shape), W),
                                       weights=_row_weights(ws, B, C, v0))
    return dW, db, dc, loss, (v if ws is None else v.clone()), p[:B]


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


def source_uniforms(generator, shapes_h, shapes_v, dtype, device, workspace: Workspace | None = None) -> Uniforms:
    """``uniforms`` for the kernels from a ``RandomSource`` (or ``torch.Generator``): step s draws
    ``shapes_h(s)`` hidden blocks, then ``shapes_v(s)`` visible ones, in that order (the order in which
    the model's ``sample_h`` and ``sample_v`` draw them, so the eager kernels consume the stream exactly
    as the layer-by-layer path does); several blocks of one step are stacked by rows. With a
    ``workspace`` the blocks are drawn into its buffers ``u_h`` and ``u_v`` (the same numbers, no new
    tensors; the next step's draw overwrites them)."""

    def draw(shape):
        return uniform(shape, dtype, generator, device)

    def stacked(name: str, shapes) -> torch.Tensor:
        if workspace is None:
            blocks = [draw(shape) for shape in shapes]
            return blocks[0] if len(blocks) == 1 else torch.cat(blocks)
        rows = sum(shape[0] for shape in shapes)
        out = workspace.get(name, (rows, *shapes[0][1:]), dtype, torch.device(device))
        start = 0
        for shape in shapes:
            uniform_(out[start : start + shape[0]], generator)
            start += shape[0]
        return out

    def in_one_buffer(hs, vs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One flat buffer for all of a step's blocks, hidden rows then visible rows, and its two views."""
        rows_h, rows_v = sum(shape[0] for shape in hs), sum(shape[0] for shape in vs)
        n_h, n_v = rows_h * hs[0][1], rows_v * vs[0][1]
        flat = torch.empty(n_h + n_v, dtype=dtype, device=device)
        return flat, flat[:n_h].view(rows_h, hs[0][1]), flat[n_h:].view(rows_v, vs[0][1])

    # one draw per step where the blocks' numbers are those of one draw of their total (numpy's stream
    # on the CPU): about 6 us instead of 23 for the three blocks of a PCD step on the digits
    one_draw = workspace is not None and isinstance(generator, RandomSource) and generator.fills_in_sequence()

    def uniforms(s: int):
        hs, vs = shapes_h(s), shapes_v(s)
        if one_draw:
            flat, u_h, u_v = workspace.cached(("uniforms", tuple(hs), tuple(vs), dtype, device),
                                              lambda: in_one_buffer(hs, vs))
            generator.uniform_(flat)
            return u_h, u_v
        return stacked("u_h", hs), stacked("u_v", vs)

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
