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
warning (the products would be emulated, slower than float32).
"""

from __future__ import annotations

import functools

import torch

from natural_bm.validation import warn_user

__all__ = ["PRECISIONS", "bfloat16_supported", "check_precision", "product_dtype"]

#: the training precisions
PRECISIONS = ("float32", "bfloat16")


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
def product_dtype(precision: str, device_type: str) -> torch.dtype | None:
    """The dtype of the training products for ``precision`` on ``device_type``: None (the model's
    dtype) for float32, and for bfloat16 where the device has no bfloat16 products (warned once)."""
    if check_precision(precision) == "float32":
        return None
    if not bfloat16_supported(device_type):
        warn_user(f"precision='bfloat16': this {device_type} device has no bfloat16 matrix products "
                  "(AVX-512 BF16 or AMX on a CPU, bfloat16 tensor cores on a GPU); training in float32.",
                  RuntimeWarning)
        return None
    return torch.bfloat16
