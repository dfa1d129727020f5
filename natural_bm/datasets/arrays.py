"""Your own data from files: ``.npy``, ``.npz`` (with a key) and ``.csv``, split and binarised.

``load_array(path, key)`` reads one matrix (n_samples, n_features) of
numbers; ``load_files(...)`` makes train/valid/test splits from explicit
files or from seeded fractions of the training file and applies one of
MNIST's binarisation kinds (``natural_bm.datasets.mnist.binarize``). Values
must lie in [0, 1] (rescale first, e.g. x / 255); the models check that too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from natural_bm.datasets.mnist import binarize
from natural_bm.io import first_line

SUFFIXES = (".npy", ".npz", ".csv")


def load_array(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """The float32 matrix (n_samples, n_features) stored in ``path``.

    ``.npy``: the array; ``.npz``: the array named ``key`` (needed when the
    file holds more than one); ``.csv``: comma-separated numbers, one row per
    sample, with or without one header line. Images (n, h, w) are flattened.

    Raises FileNotFoundError or ValueError (naming the file) for a missing
    file, an unknown suffix, a missing key, non-numeric content or an empty array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: data files must be .npy, .npz or .csv, got {suffix or 'no suffix'!r}.")
    try:
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.keys())
                if key is None and len(names) != 1:
                    raise ValueError(f"{path} holds arrays {names}; say which with data.key.")
                name = key if key is not None else names[0]
                if name not in names:
                    raise ValueError(f"{path} has no array {name!r}; it holds {names}.")
                x = archive[name]
        else:
            try:
                x = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
            except ValueError:  # a header line
                x = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, skiprows=1)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: cannot read a numeric matrix ({first_line(err)}).") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)):
        raise ValueError(f"{path}: the data must be numbers, got dtype {x.dtype}.")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.size == 0:
        raise ValueError(f"{path}: the data array is empty.")
    return np.ascontiguousarray(x, dtype=np.float32)


def split_rows(x: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split the rows of ``x`` at random (seeded) into parts of the given fractions and the rest (first)."""
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"split fractions must be >= 0 and sum to less than 1, got {fractions}.")
    order = np.random.default_rng(seed).permutation(len(x))
    sizes = [int(round(f * len(x))) for f in fractions]
    rest = len(x) - sum(sizes)
    if rest < 1:
        raise ValueError(f"splitting {len(x)} rows by {fractions} leaves no training rows.")
    parts, start = [x[order[:rest]]], rest
    for s in sizes:
        parts.append(x[order[start : start + s]])
        start += s
    return parts


def load_files(
    train: str | os.PathLike,
    valid: str | os.PathLike | None = None,
    test: str | os.PathLike | None = None,
    key: str | None = None,
    valid_fraction: float = 0.0,
    test_fraction: float = 0.0,
    kind: str = "probability",
    eval_kind: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, valid, test) float32 arrays from files (valid or test may have 0 rows).

    Each split comes from its own file when given; otherwise ``valid_fraction``
    and ``test_fraction`` of the training file's rows are held out, at random
    with ``seed``. ``kind`` binarises the training rows and ``eval_kind``
    (default ``kind``) the validation and test rows, as for MNIST ("sampled"
    draws once with ``numpy.random.default_rng(seed)``).
    """
    x = load_array(train, key)
    fractions = (0.0 if valid is not None else valid_fraction, 0.0 if test is not None else test_fraction)
    x, v_part, t_part = split_rows(x, fractions, seed)
    v = load_array(valid, key) if valid is not None else v_part
    t = load_array(test, key) if test is not None else t_part
    for name, arr in (("valid", v), ("test", t)):
        if len(arr) and arr.shape[1] != x.shape[1]:
            raise ValueError(f"the {name} data has {arr.shape[1]} columns but the training data {x.shape[1]}.")
    rng = np.random.default_rng(seed)
    eval_kind = kind if eval_kind is None else eval_kind
    return binarize(x, kind, rng), binarize(v, eval_kind, rng), binarize(t, eval_kind, rng)
