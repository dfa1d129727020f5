"""Pre-emption (issue 35): a scheduler's signal stops ``natural-bm train`` after the current update, with exit
status 75, and ``--resume`` continues bit-identically to an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import LambdaCallback
from natural_bm.callbacks.periodic_save import read_training_state
from natural_bm.cli import main
from natural_bm.run.checkpoints import RunCheckpoint
from natural_bm.run.preemption import EXIT_PREEMPTED, Preempted, Preemption, signal_number

CONFIG = {"model": {"type": "rbm", "n_hidden": 8}, "data": {"name": "bars_and_stripes", "size": 4, "n_samples": 2000},
          "training": {"epochs": 8, "batch_size": 10, "n_chains": 10}, "optimizer": {"lr": 0.02, "momentum": 0.5},
          "ais": {"n_runs": 4, "n_betas": 20}, "samples": {"n_chains": 1, "n_samples": 1, "plot_every": 1}, "seed": 1}


def test_exit_status_and_signal_names():
    assert EXIT_PREEMPTED == 75  # sysexits.h EX_TEMPFAIL: what scripts/slurm_requeue.sh tests
    assert signal_number("usr2") == signal_number("SIGUSR2") == signal.SIGUSR2
    assert signal_number(str(int(signal.SIGUSR1))) == signal.SIGUSR1
    for bad, message in (("SIGNOPE", "not a signal"), ("SIGKILL", "cannot be caught")):
        with pytest.raises(ValueError, match=message):
            signal_number(bad)


def test_a_signal_outside_a_fit_raises_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(Preempted, match="preempted by SIGUSR1"), Preemption(["SIGUSR1"]):
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(1)  # (the handler runs at the next bytecode; never reached)
    assert signal.getsignal(signal.SIGUSR1) is before


X = (np.random.default_rng(0).random((60, 9)) < 0.4).astype(np.float32)


@pytest.mark.parametrize("at_batch,boundary", [(2, False), (5, True)])
def test_a_stop_inside_an_epoch_writes_no_checkpoint_of_it(at_batch, boundary, tmp_path):
    """6 batches an epoch; a signal during epoch 1's batch 2 stops after it with epoch 0's checkpoint the
    newest; during its last batch, epoch 1 finishes and is checkpointed (with no stop reason: the run
    continues from it)."""
    model = RBM(9, 4, seed=0).compile(SGD(0.1), "pcd", n_chains=5)

    def send(batch, logs):
        if model.trainer.history is not None and len(model.trainer.history.epoch) == 1 and batch == at_batch:
            os.kill(os.getpid(), signal.SIGUSR2)

    with Preemption(["SIGUSR2"]) as preemption:
        model.fit(X, batch_size=10, epochs=4, verbose=0, seed=0,
                  callbacks=[LambdaCallback(on_train_batch_end=send), RunCheckpoint(tmp_path), preemption.callback()])
    assert preemption.requested == "SIGUSR2" and model.trainer.stop_reason == "preempted by SIGUSR2"
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("state_*.pt"))
    assert saved == (["state_epoch0000.pt", "state_epoch0001.pt"] if boundary else ["state_epoch0000.pt"])
    assert read_training_state(tmp_path / "checkpoints" / saved[-1])["stop_reason"] is None


def _train_process(cfg_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "natural_bm.cli", "train", str(cfg_path), "--out", str(out),
                             "--verbose", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whole")
    (tmp / "cfg.json").write_text(json.dumps(CONFIG))
    assert main(["train", str(tmp / "cfg.json"), "--out", str(tmp / "run"), "--verbose", "0"]) == 0
    return tmp / "cfg.json", tmp / "run"


@pytest.mark.parametrize("sig,extra", [("SIGTERM", ()), pytest.param("SIGUSR1", (), marks=pytest.mark.slow),
                                       ("SIGUSR2", ("--signal", "SIGUSR2"))])
def test_a_signalled_train_exits_75_and_resumes_bit_identically(sig, extra, uninterrupted, tmp_path):
    cfg_path, whole = uninterrupted
    out = tmp_path / "run"
    proc = _train_process(cfg_path, out, *extra)
    first = out / "checkpoints" / "state_epoch0001.pt"
    deadline = time.monotonic() + 120
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal_number(sig))
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == EXIT_PREEMPTED, err
    assert f"preempted by {sig}" in err and f"--resume {out}" in err and "Traceback" not in err
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "preempted" and results["resume_from_epoch"] in (1, 2, 3)
    assert not (out / "model.pt").exists()
    assert main(["train", "--resume", str(out), "--verbose", "0"]) == 0
    a, b = RBM.load(whole / "model.pt"), RBM.load(out / "model.pt")
    for name in a.param_names:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    pd.testing.assert_frame_equal(pd.read_csv(out / "log.csv"), pd.read_csv(whole / "log.csv"))
    assert json.loads((out / "results.json").read_text()) == json.loads((whole / "results.json").read_text())


@pytest.mark.parametrize("status,requeued", [(75, True), (0, False), (2, False)])
def test_the_slurm_script_requeues_on_the_preempted_status_only(status, requeued, tmp_path):
    """scripts/slurm_requeue.sh with stand-ins for srun, scontrol and natural-bm (one that exits ``status``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {"srun": 'while [ "${1#--}" != "$1" ]; do shift; done; exec "$@"',
             "scontrol": f'echo "$@" >> {tmp_path}/scontrol.log',
             "natural-bm": f'echo "$@" > {tmp_path}/args.log; exit {status}'}
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    script = Path(__file__).parents[1] / "scripts" / "slurm_requeue.sh"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}
    proc = subprocess.run(["bash", str(script), "cfg.yaml", "runs/x", "--set", "seed=3"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert (tmp_path / "args.log").read_text().split() == ["train", "cfg.yaml", "--resume", "runs/x", "--verbose",
                                                           "2", "--set", "seed=3"]
    assert proc.returncode == (0 if requeued else status), proc.stderr
    log = tmp_path / "scontrol.log"
    assert (log.read_text().split() == ["requeue", "4242"]) if requeued else not log.exists()


def _rank_pids(out: Path) -> dict[int, int]:
    """{rank: pid} of the natural-bm train workers that torchrun started for ``out`` (from /proc)."""
    ranks = {}
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = dict(kv.split(b"=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv)
        except (OSError, ValueError):
            continue
        if b"natural_bm.cli" in cmd and str(out).encode() in cmd and b"torch.distributed.run" not in cmd \
                and b"RANK" in env:
            ranks[int(env[b"RANK"])] = int(proc.name)
    return ranks


def _torchrun_train(cfg_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "-m", "natural_bm.cli", "train", str(cfg_path), "--out", str(out), "--verbose", "0",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds the ranks through /proc")
def test_a_signal_to_one_rank_stops_both_at_the_same_update_and_resumes(tmp_path):
    """Under torchrun (2 gloo ranks), SIGUSR1 to rank 1 alone: the ranks agree (one all-reduce of the flag per
    update), both exit 75 without waiting in a collective, and a 2-rank --resume ends with the weights of an
    uninterrupted 2-rank run."""
    cfg = {**CONFIG, "training": {**CONFIG["training"], "epochs": 6}}
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    whole = _torchrun_train(cfg_path, tmp_path / "whole")
    out = tmp_path / "run"
    proc = _torchrun_train(cfg_path, out)
    deadline = time.monotonic() + 180
    while not (out / "checkpoints" / "state_epoch0001.pt").is_file() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    ranks = _rank_pids(out)
    assert sorted(ranks) == [0, 1], ranks
    os.kill(ranks[1], signal.SIGUSR1)
    _, err = proc.communicate(timeout=180)
    err = err.decode()
    assert proc.returncode != 0 and err.count("exitcode  : 75") + err.count("exitcode: 75") >= 1, err[-3000:]
    assert "preempted by SIGUSR1" in err or "preempted by a signal on another rank" in err, err[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "preempted" and results["resume_from_epoch"] in (1, 2, 3, 4)
    again = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
                            "natural_bm.cli", "train", "--resume", str(out), "--verbose", "0"],
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert whole.wait(timeout=300) == 0, whole.stderr.read().decode()[-3000:]
    a, b = RBM.load(tmp_path / "whole" / "model.pt"), RBM.load(out / "model.pt")
    for name in a.param_names:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
