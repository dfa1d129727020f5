"""Training data larger than memory: rows read from a memory-mapped ``.npy`` file as they are needed.

``fit`` takes a ``MappedRows`` (or a ``numpy.memmap``, e.g. ``np.load(path, mmap_mode="r")``, which it
wraps) in place of an in-memory matrix. Each minibatch reads its rows, in the order of the epoch's
seeded permutation, straight from the file, so memory holds one batch (plus the monitored rows and
the permutation, 8 bytes a row), and the run is bit-identical to training on the same rows loaded
whole: shuffling, sampling and resume are unchanged.

The file is checked once, in chunks, when wrapped (NaN, inf, values outside the model's range), and
``open_npy`` reads its ``.npy`` header first: a file whose bytes after the header are not exactly the
array (truncated, or with bytes after it) or whose dtype is not bool, integers or floats is refused
with one line naming the file before anything is mapped.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from natural_bm.datasets.matrix import DataFileError, read_npy_header

__all__ = ["MappedRows", "open_npy"]

#: rows read at a time by the checks and means
CHUNK_ROWS = 4096


class MappedRows:
    """Rows of a 2-D numpy array (usually a ``numpy.memmap``) served as tensors on demand.

    Indexing with an int64 tensor, a slice or an int returns a (rows, n_features) tensor in
    ``dtype`` on ``device``; ``shape``, ``dtype`` and ``device`` describe the whole matrix.

    Args:
        array: the (n_samples, n_features) numeric array.
        device, dtype: where and how served rows live.
        name: the argument's name, for error messages.
        value_range: allowed values (None: any finite value).
    """

    def __init__(self, array: np.ndarray, device=None, dtype: torch.dtype = torch.float32, name: str = "x",
                 value_range: tuple[float, float] | None = (0.0, 1.0)) -> None:
        if not isinstance(array, np.ndarray) or array.ndim != 2:
            raise ValueError(f"`{name}` must be a 2-D array (n_samples, n_features), got "
                             f"{getattr(array, 'shape', type(array).__name__)}.")
        if array.dtype.kind not in "biuf":  # (not complex: casting would drop the imaginary part)
            raise TypeError(f"`{name}` must hold real numbers (bool, integers or floats), got dtype {array.dtype}.")
        if array.shape[0] == 0:
            raise ValueError(f"`{name}` is empty (0 rows); pass at least one sample.")
        if array.shape[1] == 0:
            raise ValueError(f"`{name}` has no columns (shape {array.shape}); pass at least one feature.")
        self.array, self.name = array, name
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.dtype = dtype
        self.shape = torch.Size(array.shape)
        self._check(value_range)

    def _check(self, value_range) -> None:
        lo, hi = np.inf, -np.inf
        for start in range(0, self.shape[0], CHUNK_ROWS):
            chunk = np.asarray(self.array[start : start + CHUNK_ROWS], dtype=np.float64)
            bad = np.isnan(chunk).any(1)
            if bad.any():
                raise ValueError(f"`{self.name}` contains NaN (first in row {start + int(bad.argmax())}); clean or "
                                 f"drop those rows.")
            lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        if np.isinf(lo) or np.isinf(hi):
            raise ValueError(f"`{self.name}` contains inf; clean or drop those rows.")
        if value_range is not None and (lo < value_range[0] or hi > value_range[1]):
            raise ValueError(f"`{self.name}` must lie in [{value_range[0]:g}, {value_range[1]:g}], got values in "
                             f"[{lo:g}, {hi:g}].")
        self.bounds = (lo, hi)
        self._check_served_range()

    def _check_served_range(self) -> None:
        """ValueError when a value would overflow to inf in the served dtype (e.g. 1e300 as float32)."""
        if self.dtype.is_floating_point:
            top = float(torch.finfo(self.dtype).max)
            if max(-self.bounds[0], self.bounds[1]) > top:
                raise ValueError(f"`{self.name}` holds values in [{self.bounds[0]:g}, {self.bounds[1]:g}], beyond "
                                 f"{str(self.dtype).replace('torch.', '')}'s range (+-{top:.3g}); rescale them or "
                                 f"serve them as torch.float64.")

    def to(self, device=None, dtype: torch.dtype | None = None) -> MappedRows:
        """The same rows served on ``device`` in ``dtype`` (a view: nothing is read again; ValueError when
        the values overflow ``dtype``)."""
        out = object.__new__(MappedRows)
        out.__dict__.update(self.__dict__)
        out.device = self.device if device is None else torch.device(device)
        out.dtype = self.dtype if dtype is None else dtype
        out._check_served_range()
        return out

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        rows = np.asarray(self.array[index])
        if rows.ndim == 1:
            rows = rows[None]
        rows = np.ascontiguousarray(rows, dtype=rows.dtype.newbyteorder("="))  # (torch reads native byte order)
        if not rows.flags.writeable:  # (a slice of a read-only map: torch wants memory it may write)
            rows = rows.copy()
        return torch.from_numpy(rows).to(device=self.device, dtype=self.dtype)

    def column_means(self) -> torch.Tensor:
        """Mean of every column (float64, read in chunks): (n_features,)."""
        total = np.zeros(self.shape[1])
        for start in range(0, self.shape[0], CHUNK_ROWS):
            total += np.asarray(self.array[start : start + CHUNK_ROWS], dtype=np.float64).sum(0)
        return torch.from_numpy(total / self.shape[0])


def open_npy(path: str | os.PathLike, **kwargs) -> MappedRows:
    """A ``.npy`` file's matrix, memory-mapped read-only (``MappedRows`` arguments as keywords; ``name``,
    for messages, is the path unless given).

    A 1-d array is one feature per row (n, 1); an array of images (n, h, w) in C order is viewed as
    (n, h * w). Raises FileNotFoundError, or ValueError / TypeError (one line naming the file) for a
    file that is not an intact ``.npy`` matrix of real numbers (see the module docstring).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; give the path of a .npy file.")
    with open(path, "rb") as f:
        shape, fortran_order, _ = read_npy_header(f, os.fstat(f.fileno()).st_size, path)
    if len(shape) == 0:
        raise DataFileError(f"{path} holds a single number (a 0-d array), not a matrix (n_samples, n_features).")
    if 0 in shape:
        raise DataFileError(f"{path}: the data array is empty (shape {shape}).")
    if len(shape) > 2 and fortran_order:
        raise DataFileError(f"{path} holds a {len(shape)}-d array in Fortran order, which cannot be mapped as "
                            f"rows; save it in C order (numpy.ascontiguousarray) or as a matrix.")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataFileError(f"{path}: cannot memory-map it ({str(err).strip().splitlines()[0]}).") from None
    array = array.reshape(shape[0], -1)  # (a view: C order, or a matrix)
    return MappedRows(array, name=kwargs.pop("name", path), **kwargs)
