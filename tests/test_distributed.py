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


def _close(a: dict, b: dict, atol: float = 1e-9) -> None:
    for kind in ("rbm", "pt", "dbm"):
        for name, x in a[kind].items():
            if name == "chains":
                y = b[kind][name]
                xs, ys = (x, y) if isinstance(x, list) else ([x], [y])
                for s, t in zip(xs, ys, strict=True):
                    assert s.shape == t.shape and torch.equal(s, t), (kind, name)  # binary states: exactly
            elif name in ("loss", "swap_rate_0"):  # (a resumed run's history has the epochs after the checkpoint)
                assert x == pytest.approx(b[kind][name][-len(x):], abs=atol), (kind, name)
            else:
                torch.testing.assert_close(x, b[kind][name], rtol=0, atol=atol, msg=f"{kind} {name}")


def test_two_process_training_matches_one_process(tmp_path, one_thread):
    """PCD RBM, parallel-tempering RBM (3 temperatures) and centred mean-field-PCD DBM (sparsity targets,
    max-norm): each rank takes half
    of every batch of 20 and 5 of the 10 chains (of every temperature); the parameters after 4 epochs equal
    one process's to float reduction order, the chains (gathered), the logged losses and swap rates too."""
    sharded = torchrun("train", tmp_path / "train.pt")
    single = distributed_worker.train()
    _close(sharded, single)


def test_two_process_training_resumes_from_a_checkpoint(tmp_path, one_thread):
    """Saved after 2 epochs (rank 0 writes the global chains), loaded by both ranks, continued: as the
    uninterrupted one-process run."""
    out = tmp_path / "resumed.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(WORKER),
           "train_resume", str(out), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _close(torch.load(out, weights_only=False), distributed_worker.train())


def test_torchrun_cli_train_equals_one_process(tmp_path):
    """torchrun -m natural_bm.cli train: 2 ranks train, shard the final AIS, and rank 0 writes the one results
    folder; the numbers equal a one-process run's to float32 reduction order."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: {type: rbm, n_hidden: 6}\ndata: {name: bars_and_stripes, size: 3, n_samples: 200}\n"
                   "training: {algorithm: pcd, k: 2, n_chains: 20, epochs: 3, batch_size: 20}\n"
                   "optimizer: {name: sgd, lr: 0.05, momentum: 0.5}\n"
                   "ais: {n_runs: 32, n_betas: 200, exact: true, reverse: true, reverse_gibbs: 50}\n"
                   "samples: {n_chains: 4, n_samples: 4, plot_every: 1000}\nseed: 0\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
                          "natural_bm.cli", "train", str(cfg), "--out", str(tmp_path / "two"), "--verbose", "0"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("results in") == 1  # one report
    one = subprocess.run([sys.executable, "-m", "natural_bm.cli", "train", str(cfg), "--out", str(tmp_path / "one"),
                          "--verbose", "0"], env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    import json

    from natural_bm import RBM

    r2, r1 = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("two", "one"))
    for key in ("logZ", "logZ_exact", "test_ll_exact", "logZ_reverse"):
        assert r2[key] == pytest.approx(r1[key], abs=1e-5), key
    m2, m1 = RBM.load(tmp_path / "two" / "model.pt"), RBM.load(tmp_path / "one" / "model.pt")
    for name in m1.param_names:
        torch.testing.assert_close(getattr(m2, name), getattr(m1, name), rtol=0, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
