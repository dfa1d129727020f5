"""The precision policy of training: the dtype of the training products.

``precision="float32"`` (the default) computes everything in the model's dtype. ``"bfloat16"`` runs
the matrix products of the CD-k and PCD-k steps of a binary RBM in bfloat16: the operands are
rounded to bfloat16 (binary states exactly; weights, grey levels and probabilities to 8 significant
bits), the BLAS accumulates in float32 and rounds the result to bfloat16, and everything else stays
in the model's dtype: the sigmoids, the comparisons with the uniforms, the biases, the means, the
loss and the parameters themselves (the master weights), which the optimiser updates in float32.
Estimators (exact log Z, AIS, RAISE, likelihoods) never read the policy: they compute in float32 or
float64 whatever the training precision.

bfloat16 products need hardware support to be fast: AVX-512 BF16 or AMX on the CPU (oneDNN), and a
GPU with bfloat16 tensor cores. Where there is none, ``"bfloat16"`` falls back to float32 with a
warning (torch's own bfloat16 products are slower than float32 there).

``"bfloat16-emulated"`` gives bfloat16's numerics on any device at about float32's speed: the same
operands rounded to bfloat16, the products and their sums in float32 (exact for the products of two
8-bit significands) and the result rounded to bfloat16. It is for asking what bfloat16 does to a
model (``experiments/precision_study``) on hardware without it; it is never faster than float32.
"""

from __future__ import annotations

import functools

import torch

from natural_bm.kernels import EMULATED_BFLOAT16
from natural_bm.validation import warn_user

__all__ = ["PRECISIONS", "bfloat16_supported", "check_precision", "product_dtype"]

#: the training precisions
PRECISIONS = ("float32", "bfloat16", "bfloat16-emulated")


def check_precision(precision: str, name: str = "precision") -> str:
    """``precision`` if it is one of ``PRECISIONS``; otherwise a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"`{name}` must be one of {PRECISIONS}, got {precision!r}.")
    return precision


@functools.cache
def bfloat16_supported(device_type: str) -> bool:
    """Whether ``device_type`` ("cpu", "cuda", ...) multiplies bfloat16 matrices in hardware."""
    if device_type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return False


@functools.cache
def product_dtype(precision: str, device_type: str) -> torch.dtype | str | None:
    """The precision of the training products for ``precision`` on ``device_type``, as the kernels take
    it (``natural_bm.kernels.affine``): None (the model's dtype) for float32, and for bfloat16 where the
    device has no bfloat16 products (warned once); torch.bfloat16; ``kernels.EMULATED_BFLOAT16``."""
    if check_precision(precision) == "float32":
        return None
    if precision == EMULATED_BFLOAT16:
        return EMULATED_BFLOAT16
    if not bfloat16_supported(device_type):
        warn_user(f"precision='bfloat16': this {device_type} device has no bfloat16 matrix products "
                  "(AVX-512 BF16 or AMX on a CPU, bfloat16 tensor cores on a GPU); training in float32.",
                  RuntimeWarning)
        return None
    return torch.bfloat16
