"""``bias + x @ w`` on the CPU through oneDNN, with ``w`` packed once.

Why: torch sends CPU float32 products to MKL, and MKL does not use its
AVX-512 kernels on AMD processors (with ``MKL_VERBOSE=1`` it reports "Intel(R)
Architecture processors" on the project machines, AMD EPYC with AVX-512).
oneDNN, which torch bundles as ``mkldnn``, picks its kernels by instruction
set. Measured for AIS's products (100x784 by 784x500, and 100x500 by
500x784) on 2 cores: 0.49-0.57 ms each through ``@`` (MKL), 0.40-0.42 ms
through oneDNN with packed weights (``scripts/bench_ais.py`` has both rows).
Packing costs about 0.3 ms, so it pays where the weights stay fixed over many
products, as in AIS (29,000 products); training, whose weights change every
batch, keeps ``torch.addmm``.

Inside ``torch.compile`` the product is the operator
``natural_bm::packed_addmm``. The packed weights are an opaque oneDNN tensor
that the compiler cannot trace, so they stay outside the graph in a registry
and the graph passes a 0-d int64 *token* naming them. A token with no packed
weights (released, or oneDNN missing) falls back to ``torch.addmm`` on the
plain weights: the result is always ``bias + x @ w``, to float32 rounding
(oneDNN sums in another order than MKL; differences are about 1e-6).

Maths kernels never see tokens: they take a matrix product as a callable,
``Product`` (``mm(bias, x) = bias + x @ w`` for its fixed ``w``), which holds
the token if the weights are packed and calls ``torch.addmm`` if not.
``torch.compile`` traces through the call and guards on the class, not on the
object, so a new ``Product`` per run does not recompile.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Iterator, Sequence

import torch

from natural_bm.validation import check_positive_int

__all__ = ["PackedWeight", "Product", "addmm", "available", "pack", "packed_products"]

_PACKED: dict[int, torch.Tensor] = {}
_TOKENS = itertools.count(1)
_LOCK = threading.Lock()
_AVAILABLE: bool | None = None

_LIB = torch.library.Library("natural_bm", "DEF")
_LIB.define("packed_addmm(Tensor bias, Tensor x, Tensor w, Tensor token) -> Tensor")


def _packed_addmm_cpu(bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    packed = _PACKED.get(int(token))
    if packed is None or x.dtype != torch.float32:
        return torch.addmm(bias, x, w)
    return torch.ops.mkldnn._linear_pointwise.default(x, packed, bias, "none", [], "")


def _packed_addmm_meta(bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    return x.new_empty((x.shape[0], w.shape[1]))


_LIB.impl("packed_addmm", _packed_addmm_cpu, "CPU")
_LIB.impl("packed_addmm", _packed_addmm_meta, "Meta")


def available() -> bool:
    """Whether this torch build can pack and multiply with oneDNN (checked once, numerically)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            g = torch.Generator().manual_seed(0)
            x, w, b = (torch.randn(s, generator=g) for s in ((5, 7), (7, 3), (3,)))
            packed = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), 5)
            y = torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")
            _AVAILABLE = bool(torch.allclose(y, torch.addmm(b, x, w), atol=1e-5))
        except (AttributeError, RuntimeError, NotImplementedError):
            _AVAILABLE = False
    return _AVAILABLE


class PackedWeight:
    """A weight matrix ``w`` (n_in, n_out) packed by oneDNN for ``bias + x @ w``.

    The packed copy lives as long as this object (or until ``release()``).
    ``token`` is the 0-d int64 tensor that names it in ``addmm``.
    """

    def __init__(self, w: torch.Tensor, batch_size: int) -> None:
        self.w = w
        with _LOCK:
            key = next(_TOKENS)
        _PACKED[key] = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), int(batch_size))
        self.token = torch.tensor(key, dtype=torch.int64)
        self._finalizer = weakref.finalize(self, _PACKED.pop, key, None)

    def release(self) -> None:
        """Free the packed copy now (later products with the token fall back to ``torch.addmm``)."""
        self._finalizer()


#: smaller weight matrices are not packed. Measured on 2 Intel Xeon cores, 100 rows: 64x20 takes
#: 0.045 ms packed against 0.011 ms through torch.addmm (784x500: 0.42 against 0.49 ms), and under CPU
#: contention (another training job on the same cores) the packed 64x20 product took 8 ms
MIN_PACKED_ELEMENTS = 2**16


def pack(w: torch.Tensor, batch_size: int) -> PackedWeight | None:
    """``w`` packed for products with ``batch_size`` rows, or None where packing does not apply.

    It applies to float32 CPU tensors of at least ``MIN_PACKED_ELEMENTS`` entries when oneDNN is
    available (``available()``).
    """
    if not isinstance(w, torch.Tensor) or w.ndim != 2:
        raise ValueError(f"`w` must be a 2-D tensor (n_in, n_out), got {getattr(w, 'shape', type(w).__name__)}.")
    batch_size = check_positive_int(batch_size, "batch_size")
    if w.device.type != "cpu" or w.dtype != torch.float32 or w.numel() < MIN_PACKED_ELEMENTS or not available():
        return None
    return PackedWeight(w, batch_size)


class Product:
    """The matrix product ``mm(bias, x) = bias + x @ w`` for a fixed ``w`` (n_in, n_out):
    shapes (n_out,), (rows, n_in) -> (rows, n_out).

    Maths kernels take products as callables, so how a product is computed stays
    out of their signatures. With ``token`` (a ``PackedWeight.token`` for ``w``)
    through oneDNN's packed weights, else ``torch.addmm``. Traceable by ``torch.compile``.
    """

    def __init__(self, w: torch.Tensor, token: torch.Tensor | None = None) -> None:
        self.w = w
        self.token = token

    def __call__(self, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return addmm(bias, x, self.w, self.token)


@contextlib.contextmanager
def packed_products(weights: Sequence[torch.Tensor], batch_size: int, enabled: bool = True
                    ) -> Iterator[tuple[Product, ...]]:
    """One ``Product`` per matrix of ``weights`` for the ``with`` block, each packed (``pack``) where
    packing applies and ``enabled`` is True, else ``torch.addmm``; frees the packed copies on exit."""
    packs = [pack(w, batch_size) if enabled else None for w in weights]
    try:
        yield tuple(Product(w, None if p is None else p.token) for w, p in zip(weights, packs, strict=True))
    finally:
        for p in packs:
            if p is not None:
                p.release()


def addmm(bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor, token: torch.Tensor | None = None) -> torch.Tensor:
    """``bias + x @ w``: shapes (n_out,), (rows, n_in), (n_in, n_out) -> (rows, n_out).

    With ``token`` (a ``PackedWeight.token`` for ``w``) through oneDNN's packed
    weights, else ``torch.addmm``. Traceable by ``torch.compile``.
    """
    if token is None:
        return torch.addmm(bias, x, w)
    return torch.ops.natural_bm.packed_addmm(bias, x, w, token)
