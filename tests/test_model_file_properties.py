"""Model files and checkpoints damaged at random (issue 35, part 4): every truncation, flipped bit or
overwritten run of bytes of a saved model (an RBM with its persistent chains and optimiser state, a
centred DBM) and of a checkpoint (``PeriodicSave``'s weights and training-state files) is refused with
a one-line ValueError naming the file, or, where the damage touches nothing that is read (zip padding,
a CRC field torch does not check), loads exactly the file's contents; never a raw zip, pickle or torch
error, a warning, or a silently different model.

Example counts: the Hypothesis profile (tests/conftest.py) "quick", the default, runs 40 examples per
test (fixed ones) on each of the four files; ``NATURAL_BM_HYPOTHESIS_PROFILE=nightly`` runs 2,000 new
ones per file.
"""

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from natural_bm import DBM, RBM, SGD, load_model
from natural_bm.callbacks import PeriodicSave
from natural_bm.io import load_torch_checked

EXAMPLES = settings.default.max_examples
FILES = ("rbm.pt", "dbm.pt", "checkpoint_weights.pt", "checkpoint_state.pt")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, tuple[Path, bytes, dict]]:
    """name -> (path, bytes, payload as torch.load reads it) of each intact file."""
    folder = tmp_path_factory.mktemp("model_files")
    x = (np.random.default_rng(0).random((16, 6)) < 0.4).astype(np.float32)
    rbm = RBM(6, 4, seed=0).compile(SGD(0.1, momentum=0.5), "pcd", n_chains=4)
    rbm.fit(x, batch_size=8, epochs=1, verbose=0, seed=1)
    rbm.save(folder / "rbm.pt")
    dbm = DBM([6, 4, 3], seed=0).compile(SGD(0.1), "mfpcd", n_chains=4, centering={"rate": 0.1})
    dbm.fit(x, batch_size=8, epochs=2, verbose=0, seed=1,
            callbacks=[PeriodicSave(folder / "w.pt", opt_path=folder / "s.pt")])
    dbm.save(folder / "dbm.pt")
    (folder / "checkpoint_weights.pt").write_bytes((folder / "w_epoch0001.pt").read_bytes())
    (folder / "checkpoint_state.pt").write_bytes((folder / "s_epoch0001.pt").read_bytes())
    return {name: (folder / name, (folder / name).read_bytes(),
                   torch.load(folder / name, map_location="cpu", weights_only=True)) for name in FILES}


def differences(a, b, where: str = "") -> list[str]:
    """Where payloads ``a`` and ``b`` differ (empty: equal): tensors bit for bit (dtype and shape too),
    NaN equal to NaN."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        equal = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                 and a.shape == b.shape and torch.equal(a, b))
        return [] if equal else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return [where]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}/{i}")]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if type(a) is type(b) and a == b else [f"{where}: {a!r} != {b!r}"]


def read(name: str, path: Path, intact: dict) -> dict:
    """The file read the way natural_bm reads that kind of file (a model file also built into its model);
    returns the payload natural_bm accepted."""
    what = "training-state file" if name == "checkpoint_state.pt" else "model file"
    payload = load_torch_checked(path, what, intact["format"], require_checksum=False)
    if what == "model file":
        load_model(path)
    return payload


def check_damaged(saved, tmp_path_factory, name: str, damaged: bytes) -> None:
    path, raw, intact = saved[name]
    bad = tmp_path_factory.getbasetemp() / f"damaged_{name}"
    bad.write_bytes(damaged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning from torch is a failure too
        try:
            payload = read(name, bad, intact)
        except ValueError as err:
            message = str(err)
            assert "\n" not in message and str(bad) in message, message
            assert "weights_only" not in message and "Traceback" not in message, message
            return
    # it loaded: then the damage changed nothing that is read (torch may read a damaged archive differently
    # from one call to the next; what natural_bm accepted is what counts)
    changed = differences(payload, intact)
    assert not changed, f"{name}: a different payload loaded: {changed}"


@pytest.mark.parametrize("name", FILES)
def test_the_intact_files_load(saved, name):
    path, raw, intact = saved[name]
    read(name, path, intact)


@pytest.mark.parametrize("name", FILES)
@settings(max_examples=EXAMPLES)
@given(cut=st.floats(0, 1, exclude_max=True))
def test_a_truncated_file_is_refused_with_one_line(saved, tmp_path_factory, name, cut):
    path, raw, intact = saved[name]
    check_damaged(saved, tmp_path_factory, name, raw[: int(cut * len(raw))])


@pytest.mark.parametrize("name", FILES)
@settings(max_examples=EXAMPLES)
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_flipped_bit_is_refused_or_changes_nothing(saved, tmp_path_factory, name, position, bit):
    path, raw, intact = saved[name]
    damaged = bytearray(raw)
    damaged[int(position * len(raw))] ^= 1 << bit
    check_damaged(saved, tmp_path_factory, name, bytes(damaged))


@pytest.mark.parametrize("name", FILES)
@settings(max_examples=EXAMPLES)
@given(position=st.floats(0, 1, exclude_max=True), burst=st.binary(min_size=1, max_size=16),
       tail=st.binary(max_size=32))
def test_overwritten_bytes_and_bytes_appended_are_refused_or_change_nothing(saved, tmp_path_factory, name,
                                                                           position, burst, tail):
    path, raw, intact = saved[name]
    i = int(position * len(raw))
    check_damaged(saved, tmp_path_factory, name, raw[:i] + burst + raw[i + len(burst):] + tail)


@given(raw=st.binary(max_size=512))
def test_random_bytes_are_refused_with_one_line(saved, tmp_path_factory, raw):
    check_damaged(saved, tmp_path_factory, "rbm.pt", raw)
