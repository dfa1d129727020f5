"""Data parallelism on torch.distributed: 2 gloo processes launched by torchrun against one process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import distributed_worker  # noqa: E402

from natural_bm import distributed as dist  # noqa: E402

WORKER = Path(__file__).with_name("distributed_worker.py")


def torchrun(task: str, out: Path, nproc: int = 2) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(WORKER),
           task, str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out, weights_only=False)


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("align", [1, 16])
def test_shard_bounds_cover_the_rows_once_in_aligned_blocks(align):
    for n in (0, 1, 7, 9, 40, 100):
        for world in (1, 2, 3, 4):
            bounds = [dist.shard_bounds(n, r, world, align) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            assert all(lo % align == 0 or lo == n for lo, _ in bounds)
            blocks = [-(-(hi - lo) // align) for lo, hi in bounds]
            assert max(blocks) - min(blocks) <= 1
    assert dist.shard_bounds(100, 1, 2, 16) == (64, 100) and dist.shard_bounds(40, 1, 2, 16) == (32, 40)


def test_sharded_ais_equals_single_process_ais_bit_for_bit(tmp_path, one_thread):
    """Forward and reverse AIS of an RBM and a DBM, eager: 2 ranks x (32 and 8 runs) against 1 process x 40."""
    sharded = torchrun("ais_eager", tmp_path / "ais.pt")
    assert sharded["world_size"] == 2
    single = distributed_worker.run_ais(False)
    for name in ("rbm", "dbm"):
        assert sharded[name]["distributed"] and not single[name]["distributed"]
        assert torch.equal(sharded[name]["log_w"], single[name]["log_w"])
        assert torch.equal(sharded[name]["log_w_reverse"], single[name]["log_w_reverse"])
        assert sharded[name]["logZ"] == single[name]["logZ"]


def test_sharded_ais_on_counters_equals_single_process_bit_for_bit(tmp_path, one_thread):
    """The compiled path's counter layout (global run index, global stride), run by the eager tail."""
    from natural_bm.estimators import ais_engine

    calls = ais_engine.PAIR.steps.compiled_calls, ais_engine.LAYERED.steps.compiled_calls
    sharded = torchrun("ais_counters", tmp_path / "ais.pt")
    single = distributed_worker.run_ais(False, counters_only=True)
    assert (ais_engine.PAIR.steps.compiled_calls, ais_engine.LAYERED.steps.compiled_calls) == calls  # no compiling
    for name in ("rbm", "dbm"):
        assert torch.equal(sharded[name]["log_w"], single[name]["log_w"])
        assert torch.equal(sharded[name]["log_w_reverse"], single[name]["log_w_reverse"])


@pytest.mark.slow
def test_sharded_compiled_ais_equals_single_process_bit_for_bit(tmp_path, one_thread):
    """The compiled path: counters keyed by the global run index (slow: compiles in every process)."""
    sharded = torchrun("ais_compiled", tmp_path / "ais.pt")
    single = distributed_worker.run_ais(True)
    for name in ("rbm", "dbm"):
        assert torch.equal(sharded[name]["log_w"], single[name]["log_w"])
        assert torch.equal(sharded[name]["log_w_reverse"], single[name]["log_w_reverse"])
