"""Data files generated to break the loaders (issue 35, part 4): ``load_array`` (.npy, .npz, .csv) and
``open_npy`` either load the documented float32 matrix (n_samples, n_features), equal to an independent
reading of what was written, or refuse the file with one line (ValueError, TypeError or
FileNotFoundError) that names it; never a traceback from numpy or zipfile, a warning, or a silently
different matrix.

Generated: arrays of random shapes (0-d, 1-d, 3-d, empty, one row), dtypes (bool, integers, floats
including float16, complex, dates, strings, objects) and values (NaN, inf, beyond float32's range),
in either memory order; truncated files and files with bytes appended; .npz archives of one to three
arrays with byte flips anywhere (the zip CRCs must catch them); CSV text with and without a header,
with other delimiters, an extra column, blank lines, CRLF line ends, a byte-order mark and truncation,
compared with a small reference parser of the documented CSV format.

Example counts: the Hypothesis profile (tests/conftest.py) "quick", the default, runs 40 examples per
test (fixed ones); ``NATURAL_BM_HYPOTHESIS_PROFILE=nightly`` runs 2,000 new ones per test.
"""

import io
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from natural_bm.datasets import load_array, open_npy
from natural_bm.datasets.mnist import parse_idx

EXAMPLES = settings.default.max_examples
REFUSALS = (ValueError, TypeError, FileNotFoundError)

REAL_DTYPES = st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(endianness="?"),
                        hnp.unsigned_integer_dtypes(endianness="?"),
                        hnp.floating_dtypes(sizes=(16, 32, 64), endianness="?"))
OTHER_DTYPES = st.one_of(hnp.complex_number_dtypes(endianness="?"), hnp.datetime64_dtypes(),
                         hnp.timedelta64_dtypes(), hnp.unicode_string_dtypes(max_len=4),
                         hnp.byte_string_dtypes(max_len=4))
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


@st.composite
def arrays(draw, dtypes=None):
    """A numpy array of a random dtype and shape, in C or Fortran order (values include NaN and inf)."""
    dtype = draw(dtypes if dtypes is not None else st.one_of(REAL_DTYPES, REAL_DTYPES, OTHER_DTYPES))
    x = draw(hnp.arrays(dtype, SHAPES))
    return np.asfortranarray(x) if draw(st.booleans()) else x


def expected_matrix(x: np.ndarray) -> np.ndarray | None:
    """What the loaders must return for the array ``x``: its float32 matrix, or None (refused)."""
    if x.dtype.kind not in "biuf" or x.ndim == 0 or x.size == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        m = x.reshape(x.shape[0], -1).astype(np.float32)
    return m if np.isfinite(m).all() else None


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated_data")


def outcome(load, path: Path):
    """``load(path)`` as ("loaded", matrix) or ("refused", message); fails on anything else."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning from numpy is a failure too
        try:
            x = load(path)
        except REFUSALS as err:
            message = str(err)
            assert "\n" not in message and str(path) in message, message
            return "refused", message
    return "loaded", x


def assert_loads_as(load, path: Path, want: np.ndarray | None) -> None:
    kind, got = outcome(load, path)
    if want is None:
        assert kind == "refused", f"loaded {got!r}"
    else:
        assert kind == "loaded", got
        got = got[:].numpy() if hasattr(got, "column_means") else got  # open_npy's MappedRows
        assert got.dtype == np.float32 and got.shape == want.shape and np.array_equal(got, want)


def mapped(path: Path):
    return open_npy(path, value_range=None)


# ---------------------------------------------------------------------------- .npy


@settings(max_examples=3 * EXAMPLES)
@given(x=arrays())
def test_npy_files_load_as_their_float_matrix_or_are_refused(folder, x):
    path = folder / "x.npy"
    np.save(path, x, allow_pickle=False)
    assert_loads_as(load_array, path, expected_matrix(x))


@given(x=arrays())
def test_npy_files_memory_map_as_their_float_matrix_or_are_refused(folder, x):
    """``open_npy``: the same, except that arrays of images in Fortran order are refused (not mappable)."""
    path = folder / "m.npy"
    np.save(path, x, allow_pickle=False)
    want = expected_matrix(x)
    if x.ndim > 2 and x.flags.f_contiguous and not x.flags.c_contiguous:
        want = None
    assert_loads_as(mapped, path, want)


@given(x=hnp.arrays(st.just(np.dtype(object)), hnp.array_shapes(max_dims=2), elements=st.integers(0, 1)))
def test_npy_files_of_python_objects_are_refused(folder, x):
    path = folder / "o.npy"
    np.save(path, x, allow_pickle=True)
    for load in (load_array, mapped):
        assert outcome(load, path)[0] == "refused"


@given(x=arrays(REAL_DTYPES), cut=st.floats(0, 1, exclude_max=True), extra=st.binary(min_size=1, max_size=64),
       append=st.booleans())
def test_truncated_npy_files_and_bytes_after_the_array_are_refused(folder, x, cut, extra, append):
    buffer = io.BytesIO()
    np.save(buffer, x)
    raw = buffer.getvalue()
    path = folder / "t.npy"
    path.write_bytes(raw + extra if append else raw[: int(cut * len(raw))])
    for load in (load_array, mapped):
        assert outcome(load, path)[0] == "refused"


# ---------------------------------------------------------------------------- .npz


@st.composite
def archives(draw):
    names = draw(st.lists(st.text("abcxyz_0123456789", min_size=1, max_size=6), min_size=1, max_size=3,
                          unique=True))
    return {name: draw(arrays()) for name in names}, draw(st.booleans())


@settings(max_examples=2 * EXAMPLES)
@given(archive=archives(), key_choice=st.integers(0, 4))
def test_npz_archives_load_the_named_array_or_are_refused(folder, archive, key_choice):
    members, compressed = archive
    path = folder / "x.npz"
    (np.savez_compressed if compressed else np.savez)(path, **members)
    names = list(members)
    key = None if key_choice == 0 else (names[key_choice - 1] if key_choice <= len(names) else "missing")
    if key is None:
        want = expected_matrix(members[names[0]]) if len(names) == 1 else None
    else:
        want = expected_matrix(members[key]) if key in members else None
    assert_loads_as(lambda p: load_array(p, key), path, want)


@settings(max_examples=2 * EXAMPLES)
@given(archive=archives(), position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7),
       cut=st.booleans())
def test_damaged_npz_archives_are_refused_or_load_the_same_matrix(folder, archive, position, bit, cut):
    """A flipped bit anywhere (data, headers, CRCs, directory) or a truncation: the zip CRCs and sizes catch
    what would change the matrix; a flip that changes nothing read (a time stamp, an unused field) loads
    the same matrix."""
    members, compressed = archive
    members = {name: x for name, x in members.items() if x.dtype.kind != "O"}
    assume(len(members) == 1)
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **members)
    raw = bytearray(buffer.getvalue())
    i = int(position * len(raw))
    if cut:
        raw = raw[:i]
    else:
        raw[i] ^= 1 << bit
    path = folder / "d.npz"
    path.write_bytes(bytes(raw))
    kind, got = outcome(load_array, path)
    if kind == "loaded":
        want = expected_matrix(next(iter(members.values())))
        assert want is not None and got.shape == want.shape and np.array_equal(got, want)


def test_a_zip_without_arrays_and_a_npy_named_npz_are_refused(folder):
    path = folder / "z.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "no arrays here")
    assert outcome(load_array, path) == ("refused", f"{path} holds no arrays (no .npy members); save the arrays "
                                                    f"with numpy.savez.")
    np.save(folder / "y.npy", np.ones((2, 2)))
    path.write_bytes((folder / "y.npy").read_bytes())
    assert outcome(load_array, path) == ("refused", f"{path} is a .npy file, not an .npz archive; rename it to .npy.")


# ---------------------------------------------------------------------------- .csv

_NUMBER = re.compile(r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)\s*", re.IGNORECASE)


def reference_csv(text: str) -> np.ndarray | None:
    """The documented CSV format, read independently of numpy: the float32 matrix, or None (refused).

    Empty lines are skipped; the first line is a header when none of its comma-separated fields is a
    number, and must then name as many columns as the rows hold; every other line holds the same number
    of fields, each a number (Python's float, which numpy's parser agrees with on these fields)."""
    lines = [line for line in text.splitlines() if line != ""]
    if not lines:
        return None
    header = lines[0].split(",")
    if any(_NUMBER.fullmatch(field) for field in header):
        header = None
    else:
        lines = lines[1:]
    rows = [line.split(",") for line in lines]
    if not rows or any(len(r) != len(rows[0]) for r in rows) or (header and len(header) != len(rows[0])):
        return None
    try:
        values = np.array([[float(field) for field in r] for r in rows], dtype=np.float64)
    except ValueError:
        return None
    with np.errstate(over="ignore"):
        m = values.astype(np.float32)
    return m if np.isfinite(m).all() else None


NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.floats(-1e3, 1e3), st.integers(-1000, 1000), st.floats(), st.sampled_from([0.0, 1.0, 0.5]))


@st.composite
def csv_texts(draw):
    """CSV text: a matrix of numbers (repr, %g or integers), maybe damaged on purpose."""
    n_rows, n_cols = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    fmt = draw(st.sampled_from([repr, lambda v: f"{v:g}", lambda v: f"{v:.3f}"]))
    delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t", " ", ", "]))
    cells = [[fmt(draw(NUMBERS)) for _ in range(n_cols)] for _ in range(n_rows)]
    if draw(st.booleans()):  # an extra column in one row
        cells[draw(st.integers(0, n_rows - 1))].append(fmt(draw(NUMBERS)))
    lines = [delimiter.join(row) for row in cells]
    header = draw(st.sampled_from(["none", "none", "names", "too_few", "too_many"]))
    if header != "none":
        width = n_cols + {"names": 0, "too_few": -1, "too_many": 1}[header]
        names = [draw(st.text("abcdefinpxy", min_size=1, max_size=5)) for _ in range(max(width, 1))]
        lines.insert(0, delimiter.join(names))
    for _ in range(draw(st.integers(0, 2))):  # blank lines
        lines.insert(draw(st.integers(0, len(lines))), "")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    if draw(st.booleans()):  # truncated
        text = text[: draw(st.integers(0, len(text)))]
    return text, draw(st.booleans())  # (text, with a byte-order mark)


@settings(max_examples=4 * EXAMPLES)
@given(csv=csv_texts())
def test_csv_files_load_as_the_reference_reads_them_or_are_refused(folder, csv):
    text, bom = csv
    path = folder / "x.csv"
    path.write_bytes(text.encode("utf-8-sig" if bom else "utf-8"))
    assert_loads_as(load_array, path, reference_csv(text))


@given(raw=st.binary(max_size=200))
def test_csv_files_of_random_bytes_load_as_the_reference_reads_them_or_are_refused(folder, raw):
    path = folder / "b.csv"
    path.write_bytes(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        want = None
    else:
        assume("\x00" not in text and not re.search(r"[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", text))
        want = reference_csv(text.replace("\r\n", "\n").replace("\r", "\n"))
    kind, got = outcome(load_array, path)
    if want is None:
        assert kind == "refused", got
    elif kind == "loaded":  # (numpy's number parser may refuse odd text Python's float reads)
        assert np.array_equal(got, want)


def test_suffixes_and_missing_files_are_refused_naming_the_file(folder):
    for name in ("x.txt", "x"):
        (folder / name).write_text("1,2\n")
        assert outcome(load_array, folder / name)[0] == "refused"
    with pytest.raises(FileNotFoundError, match="data file not found: .*missing.csv"):
        load_array(folder / "missing.csv")


# ---------------------------------------------------------------------------- MNIST's IDX bytes


@given(x=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6)),
       damage=st.one_of(st.none(), st.integers(-8, 8)))
def test_idx_bytes_decode_to_their_array_or_are_refused(x, damage):
    """MNIST's IDX format (checked by SHA-256 before it is decoded): intact bytes give the array; bytes cut
    short or extended give a ValueError."""
    raw = bytes([0, 0, 8, x.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in x.shape) + x.tobytes()
    if damage:
        raw = raw[:damage] if damage < 0 else raw + bytes(damage)
    if not damage:
        np.testing.assert_array_equal(parse_idx(raw), x)
    else:
        with pytest.raises(ValueError):
            parse_idx(raw)


@given(raw=st.binary(max_size=64))
def test_idx_decoding_of_random_bytes_is_an_array_or_a_value_error(raw):
    try:
        x = parse_idx(raw)
    except ValueError:
        return
    assert x.dtype == np.uint8 and x.size == len(raw) - 4 - 4 * raw[3]


def test_mapped_rows_refuse_values_beyond_float32_when_served_as_float32(folder):
    np.save(folder / "big.npy", np.array([[1e300, 0.0]]))
    with pytest.raises(ValueError, match=r"big.npy.*float32"):
        open_npy(folder / "big.npy", value_range=None)
    rows = open_npy(folder / "big.npy", value_range=None, dtype=torch.float64)
    assert rows[:].tolist() == [[1e300, 0.0]]
    with pytest.raises(ValueError, match="float32"):
        rows.to(dtype=torch.float32)
