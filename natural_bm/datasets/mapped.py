"""Training data larger than memory: rows read from a memory-mapped ``.npy`` file as they are needed.

``fit`` takes a ``MappedRows`` (or a ``numpy.memmap``, e.g. ``np.load(path, mmap_mode="r")``, which it
wraps) in place of an in-memory matrix. Each minibatch reads its rows, in the order of the epoch's
seeded permutation, straight from the file, so memory holds one batch (plus the monitored rows and
the permutation, 8 bytes a row), and the run is bit-identical to training on the same rows loaded
whole: shuffling, sampling and resume are unchanged.

The file is checked once, in chunks, when wrapped (NaN, inf, values outside the model's range).
"""

from __future__ import annotations

import os

import numpy as np
import torch

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
        if not (np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)):
            raise TypeError(f"`{name}` must hold numbers, got dtype {array.dtype}.")
        if array.shape[0] == 0:
            raise ValueError(f"`{name}` is empty (0 rows); pass at least one sample.")
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

    def to(self, device=None, dtype: torch.dtype | None = None) -> MappedRows:
        """The same rows served on ``device`` in ``dtype`` (a view: nothing is read or checked again)."""
        out = object.__new__(MappedRows)
        out.__dict__.update(self.__dict__)
        out.device = self.device if device is None else torch.device(device)
        out.dtype = self.dtype if dtype is None else dtype
        return out

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        rows = np.asarray(self.array[index])
        if rows.ndim == 1:
            rows = rows[None]
        return torch.from_numpy(np.ascontiguousarray(rows)).to(device=self.device, dtype=self.dtype)

    def column_means(self) -> torch.Tensor:
        """Mean of every column (float64, read in chunks): (n_features,)."""
        total = np.zeros(self.shape[1])
        for start in range(0, self.shape[0], CHUNK_ROWS):
            total += np.asarray(self.array[start : start + CHUNK_ROWS], dtype=np.float64).sum(0)
        return torch.from_numpy(total / self.shape[0])


def open_npy(path: str | os.PathLike, **kwargs) -> MappedRows:
    """A ``.npy`` file's matrix, memory-mapped read-only (``MappedRows`` arguments as keywords)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; give the path of a .npy file.")
    return MappedRows(np.load(path, mmap_mode="r"), name=kwargs.pop("name", os.path.basename(path)), **kwargs)
