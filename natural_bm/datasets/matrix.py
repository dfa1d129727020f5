"""Checks shared by the data-file loaders: the ``.npy`` header against the bytes that follow it, the dtype,
the shape and the values of a matrix read from a file, and its conversion to float32.

Every refusal is a ``DataFileError``, a ValueError of one line that names the file.
"""

from __future__ import annotations

import math
import os

import numpy as np
import numpy.lib.format as npy_format

from natural_bm.io import first_line

__all__ = ["DataFileError", "as_float_matrix", "check_numeric_dtype", "read_npy_header"]

FLOAT32_MAX = float(np.finfo(np.float32).max)

#: what a refused dtype holds, by numpy's kind letter
_KIND_WORDS = {"c": "complex numbers", "m": "time spans", "M": "dates", "O": "Python objects", "U": "text",
               "S": "bytes", "V": "records"}


class DataFileError(ValueError):
    """A data file that is refused: one line naming the file (raised as it is by the loaders)."""


def check_numeric_dtype(dtype: np.dtype, where: str | os.PathLike) -> None:
    """DataFileError unless ``dtype`` holds real numbers: bool, integers or floats (any width, any byte order)."""
    if dtype.kind not in "biuf":
        what = _KIND_WORDS.get(dtype.kind, f"dtype {dtype}")
        raise DataFileError(f"{where}: the data must be real numbers (bool, integers or floats), but it holds "
                            f"{what} (dtype {dtype}); convert it before saving, e.g. x.astype(float).")


def read_npy_header(fp, n_bytes: int, where: str | os.PathLike) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``fp``, read from its start; ``fp`` is left at
    the first data byte.

    Args:
        fp: a binary file object at the start of the ``.npy`` bytes.
        n_bytes: how many bytes the whole ``.npy`` stream holds (the file's size).
        where: the file, for messages.

    Raises DataFileError when the bytes do not start with a ``.npy`` header of version 1.0 or 2.0, when
    the dtype is not numeric, or when the data after the header is not exactly shape x itemsize bytes
    (a truncated file, or one with bytes after the array).
    """
    try:
        version = npy_format.read_magic(fp)
    except ValueError:
        raise DataFileError(f"{where} is not a .npy file (it does not start with numpy's .npy header); save "
                            f"the array with numpy.save.") from None
    if version not in ((1, 0), (2, 0)):
        raise DataFileError(f"{where}: .npy format version {version[0]}.{version[1]} is not one natural_bm "
                            f"reads (1.0 or 2.0, what numpy.save writes for numbers).")
    try:
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran_order, dtype = reader(fp)
    except Exception as err:  # noqa: BLE001 - a damaged header: numpy raises ValueError, EOFError, ...
        raise DataFileError(f"{where}: damaged .npy header ({first_line(err)}).") from None
    check_numeric_dtype(dtype, where)
    expected = math.prod(shape) * dtype.itemsize
    held = n_bytes - fp.tell()
    if held != expected:
        state = "truncated or damaged" if held < expected else "damaged, or holds more than one array"
        raise DataFileError(f"{where}: its .npy header says shape {tuple(shape)} of {dtype} ({expected:,} bytes of "
                            f"data) but {max(held, 0):,} bytes follow it; the file is {state}.")
    return tuple(int(s) for s in shape), bool(fortran_order), dtype


def as_float_matrix(x: np.ndarray, where: str | os.PathLike) -> np.ndarray:
    """The float32 matrix (n_samples, n_features) of the numeric array ``x`` read from ``where``.

    A 1-d array is one feature per row, (n, 1); an array of images (n, h, w, ...) is flattened to
    (n, h * w * ...). Values are converted to float32 (integers beyond 2**24 round).

    Raises DataFileError for a non-numeric dtype, a 0-d or empty array, NaN, inf, or values beyond
    float32's range (+-3.4e38).
    """
    check_numeric_dtype(x.dtype, where)
    if x.ndim == 0:
        raise DataFileError(f"{where} holds a single number (a 0-d array), not a matrix (n_samples, n_features).")
    if x.size == 0:
        raise DataFileError(f"{where}: the data array is empty (shape {tuple(x.shape)}).")
    x = x.reshape(x.shape[0], -1)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(x, dtype=np.float32)
    if not out.flags.writeable:  # (an array on a read-only buffer, e.g. an .npz member's bytes)
        out = out.copy()
    finite = np.isfinite(out)
    if not finite.all():
        row, col = (int(i) for i in np.unravel_index(int(np.argmin(finite)), out.shape))
        value = x[row, col]
        if np.isnan(value):
            what = "NaN"
        elif np.isinf(value):
            what = "inf"
        else:
            what = f"{float(value):.6g}, beyond float32's range (+-{FLOAT32_MAX:.3g}),"
        raise DataFileError(f"{where} holds {what} at row {row}, column {col} (counted from 0); clean, rescale or "
                            f"drop those rows.")
    return out
