"""Training from a memory-mapped .npy file: the same run as in memory, and within a memory limit."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from natural_bm import DBM, RBM, SGD
from natural_bm.datasets import MappedRows, open_npy


def _train(x, kind):
    if kind == "rbm":
        m = RBM(12, 5, seed=0).compile(SGD(0.05, momentum=0.5), "pcd", n_chains=10)
    else:
        m = DBM([12, 5, 4], seed=0).compile(SGD(0.05, momentum=0.5), "mfpcd", n_chains=10, mf_steps=3,
                                            centering=True)
    m.init_from_data(x)
    m.fit(x, batch_size=16, epochs=3, verbose=0, seed=3, binarize=True)
    return m


@pytest.mark.parametrize("kind", ["rbm", "dbm"])
def test_memory_mapped_training_is_the_in_memory_run_bit_for_bit(tmp_path, kind):
    x = np.random.default_rng(0).random((150, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    a = _train(x, kind)
    b = _train(np.load(tmp_path / "x.npy", mmap_mode="r"), kind)
    c = _train(open_npy(tmp_path / "x.npy"), kind)
    for name in a.param_names:
        assert torch.equal(getattr(a, name), getattr(b, name)) and torch.equal(getattr(a, name), getattr(c, name))


def test_mapped_rows_check_the_file_and_serve_rows(tmp_path):
    x = np.arange(24, dtype=np.float64).reshape(6, 4) / 24
    np.save(tmp_path / "x.npy", x)
    rows = open_npy(tmp_path / "x.npy", dtype=torch.float64)
    assert rows.shape == (6, 4) and torch.equal(rows[torch.tensor([4, 1])], torch.from_numpy(x[[4, 1]]))
    assert torch.equal(rows[2:4], torch.from_numpy(x[2:4]))
    np.testing.assert_allclose(rows.column_means().numpy(), x.mean(0))
    bad = x.copy()
    bad[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="NaN .first in row 3"):
        open_npy(tmp_path / "nan.npy")
    np.save(tmp_path / "big.npy", x * 3)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        open_npy(tmp_path / "big.npy")
    with pytest.raises(FileNotFoundError, match="missing.npy not found"):
        open_npy(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="12 visible units"):
        RBM(12, 3).fit(rows, verbose=0)
    assert isinstance(open_npy(tmp_path / "x.npy", value_range=None), MappedRows)


def test_training_from_a_file_larger_than_the_memory_limit(tmp_path):
    """A child process limited to 200 MB more heap (RLIMIT_DATA) than it uses after import: loading the
    250 MB file whole fails, training from it memory-mapped runs a full epoch."""
    resource = pytest.importorskip("resource")
    path = tmp_path / "big.npy"
    rows, cols = 250_000, 1000
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, cols))
    rng = np.random.default_rng(0)
    for start in range(0, rows, 50_000):
        big[start : start + 50_000] = rng.random((50_000, cols), dtype=np.float32) < 0.3
    big.flush()
    del big
    script = textwrap.dedent(f"""
        import resource, numpy as np, torch
        from natural_bm import RBM, SGD
        from natural_bm.datasets import open_npy
        used = int([l for l in open("/proc/self/status") if l.startswith("VmData")][0].split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (used + 200 * 2**20, resource.RLIM_INFINITY))
        try:
            np.load({str(path)!r}).astype(np.float32)
            print("LOADED WHOLE")
        except MemoryError:
            print("whole: MemoryError")
        x = open_npy({str(path)!r})
        m = RBM({cols}, 8, seed=0).init_from_data(x).compile(SGD(0.01), "pcd", n_chains=100)
        h = m.fit(x, batch_size=2000, epochs=1, verbose=0, seed=0)
        print("trained", len(h.epoch), "epoch, loss", round(h.history["loss"][0], 2))
    """)
    # glibc's dynamic mmap threshold keeps freed batch-sized blocks on the heap (VmData rose by 60 to 500 MB
    # an epoch, up and down, with an unrelated change to models/base.py); a fixed threshold returns them
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "whole: MemoryError" in proc.stdout and "trained 1 epoch" in proc.stdout, proc.stdout
    del resource
