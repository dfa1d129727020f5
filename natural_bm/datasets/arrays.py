"""Your own data from files: ``.npy``, ``.npz`` (with a key) and ``.csv``, split and binarised.

``load_array(path, key)`` reads one matrix (n_samples, n_features) of
numbers; ``load_files(...)`` makes train/valid/test splits from explicit
files or from seeded fractions of the training file and applies one of
MNIST's binarisation kinds (``natural_bm.datasets.mnist.binarize``). Values
must lie in [0, 1] (rescale first, e.g. x / 255); the models check that too.

What is read, and what is refused (a ValueError of one line that names the file):

* ``.npy``: numpy's format 1.0 or 2.0 (what ``numpy.save`` writes), of bool, integers or floats; the
  bytes after the header must be exactly the array (a truncated file, or one with bytes after the
  array, is refused; the header is checked before any memory is taken).
* ``.npz``: a zip archive of ``.npy`` members (``numpy.savez``, ``numpy.savez_compressed``), each
  member's CRC checked; ``key`` names the member (needed when there are several).
* ``.csv``: UTF-8 text (a byte-order mark is allowed), comma-separated numbers, one row per sample,
  every row with as many; empty lines are skipped; at most one header line, the first, and only
  when none of its fields is a number (so a damaged first row is refused, not taken for a header),
  naming as many columns as the rows have. ``nan``, ``inf``, quotes, ``#`` and other delimiters are
  refused.
* Any of them: a 1-d array is one feature per row, (n, 1); images (n, h, w) are flattened; 0-d or
  empty arrays, complex numbers, dates, text, objects, NaN, inf and values beyond float32's range are
  refused. The result is float32.
"""

from __future__ import annotations

import io
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from natural_bm.datasets.matrix import DataFileError, as_float_matrix, read_npy_header
from natural_bm.datasets.mnist import binarize
from natural_bm.io import first_line

SUFFIXES = (".npy", ".npz", ".csv")
NPY_MAGIC = b"\x93NUMPY"
#: a field numpy's CSV parser reads as a number (the header test)
_NUMBER = re.compile(r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)\s*", re.IGNORECASE)


def load_array(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """The float32 matrix (n_samples, n_features) stored in ``path``.

    ``.npy``: the array; ``.npz``: the array named ``key`` (needed when the
    file holds more than one); ``.csv``: comma-separated numbers, one row per
    sample, with or without one header line. Images (n, h, w) are flattened.
    The module docstring says exactly what is read and what is refused.

    Raises FileNotFoundError or ValueError (one line naming the file) for a
    missing file, an unknown suffix, a missing key, a damaged, truncated or
    non-numeric file, NaN or inf, or an empty array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: data files must be .npy, .npz or .csv, got {suffix or 'no suffix'!r}.")
    try:
        reader = {".npy": _read_npy, ".npz": _read_npz, ".csv": _read_csv}[suffix]
        x = reader(path, key)
        return as_float_matrix(x, path)
    except DataFileError:
        raise
    except MemoryError:
        raise ValueError(f"{path}: reading it needs more memory than is free (a damaged size field, or data too "
                         f"large for this machine: memory-map a .npy file with natural_bm.datasets.open_npy).") \
            from None
    except Exception as err:  # noqa: BLE001 - damaged bytes raise anything (zip, zlib, numpy): refuse in one line
        raise ValueError(f"{path}: cannot read a numeric matrix ({first_line(err)}).") from None


def _read_npy(path: Path, key: str | None) -> np.ndarray:
    with open(path, "rb") as f:
        read_npy_header(f, os.fstat(f.fileno()).st_size, path)
        f.seek(0)
        return np.load(f, allow_pickle=False)


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    with open(path, "rb") as f:
        if f.read(len(NPY_MAGIC)) == NPY_MAGIC:
            raise DataFileError(f"{path} is a .npy file, not an .npz archive; rename it to .npy.")
    if not zipfile.is_zipfile(path):
        raise DataFileError(f"{path} is not an .npz archive (no zip directory: truncated, damaged or another "
                            f"format); save the arrays with numpy.savez.")
    with zipfile.ZipFile(path) as archive:
        members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
        names = list(members)
        if not names:
            raise DataFileError(f"{path} holds no arrays (no .npy members); save the arrays with numpy.savez.")
        if key is None and len(names) != 1:
            raise DataFileError(f"{path} holds arrays {names}; say which with data.key.")
        name = key if key is not None else names[0]
        if name not in members:
            raise DataFileError(f"{path} has no array {name!r}; it holds {names}.")
        raw = archive.read(members[name])  # (checks the member's CRC)
    where = f"{path} (array {name!r})"
    with io.BytesIO(raw) as f:
        shape, fortran_order, dtype = read_npy_header(f, len(raw), where)
        offset = f.tell()
    x = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=offset)
    return x.reshape(shape, order="F" if fortran_order else "C")


def _read_csv(path: Path, key: str | None) -> np.ndarray:
    header, skip = None, 0
    with open(path, encoding="utf-8-sig", newline=None) as f:
        for i, line in enumerate(f):
            if line.strip("\r\n"):
                fields = line.rstrip("\r\n").split(",")
                if not any(_NUMBER.fullmatch(field) for field in fields):
                    header, skip = fields, i + 1
                break
    with warnings.catch_warnings():  # (numpy warns of a file without data; refused below)
        warnings.simplefilter("ignore")
        try:
            x = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, skiprows=skip, comments=None,
                           encoding="utf-8-sig")
        except ValueError as err:
            raise DataFileError(f"{path}: cannot read a numeric matrix ({first_line(err).split('; use')[0]}); a "
                                f".csv data file holds comma-separated numbers, one row per sample, as many in "
                                f"every row, after at most one header line.") from None
    if x.size == 0:
        raise DataFileError(f"{path} holds no rows of numbers{' (only a header line)' if header else ''}; a .csv "
                            f"data file holds comma-separated numbers, one row per sample.")
    if header is not None and len(header) != x.shape[1]:
        raise DataFileError(f"{path}: its header line names {len(header)} columns but its rows hold "
                            f"{x.shape[1]} numbers; fix the header or the rows.")
    return x


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
