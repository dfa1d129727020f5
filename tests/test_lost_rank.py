"""A rank that dies under torchrun (issue 35, part 2): 2 gloo processes run ``natural-bm train``, and one of
them is killed with SIGKILL (or frozen with SIGSTOP) in the middle of epoch 2.

The other rank must end within a bounded time (the collective timeout, ``$NATURAL_BM_COLLECTIVE_TIMEOUT``,
5 s here and 60 s by default) with one line naming the lost rank, and the results folder must resume
(``--resume``, again with 2 ranks) to the uninterrupted run's weights, bit for bit. The faults are
injected by ``tests/distributed_worker.py cli``. torchrun runs with ``--monitor-interval 3``: its agent
tears the remaining workers down (SIGTERM) when it sees one die, which by default it checks every 0.1 s;
the longer interval leaves the survivor time to notice the loss itself, as it does when the agent is on
another machine.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from natural_bm import distributed as dist
from natural_bm.models import load_model

WORKER = Path(__file__).with_name("distributed_worker.py")
TIMEOUT_S = 5
#: generous room for starting and ending processes on a loaded machine, on top of TIMEOUT_S
SLACK_S = 20
#: 200 rows in batches of 20: 10 updates an epoch; update 25 is the 5th of epoch 2
KILL_AT = 25
CONFIG = ("model: {type: rbm, n_hidden: 6}\ndata: {name: bars_and_stripes, size: 3, n_samples: 200}\n"
          "training: {algorithm: pcd, k: 1, n_chains: 20, epochs: 4, batch_size: 20}\n"
          "optimizer: {name: sgd, lr: 0.05, momentum: 0.5}\nais: {n_runs: 32, n_betas: 100, exact: true}\n"
          "samples: {n_chains: 4, n_samples: 4, plot_every: 1000}\nseed: 0\n")


def torchrun(pid_dir: Path, fault: str, *args: str) -> subprocess.Popen:
    """``natural-bm ARGS`` on 2 ranks under torchrun, with ``fault`` injected (distributed_worker.cli)."""
    pid_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", dist.ENV_COLLECTIVE_TIMEOUT: str(TIMEOUT_S)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "--monitor-interval=3", str(WORKER), "cli", fault, str(pid_dir), "--", *args, "--verbose", "0"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"torchrun hung:\n{err[-3000:]}")
    return proc.returncode, err


def wait_for_file(path: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 300
    while not path.is_file() or not path.read_text().endswith("\n"):
        if proc.poll() is not None:
            pytest.fail(f"torchrun ended before {path.name} was written:\n{proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.02)
    return path.read_text()


def ended(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie its parent has not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def seconds_until_ended(pid: int, since: float, limit: float) -> float:
    while not ended(pid):
        assert time.time() - since < limit, f"rank process {pid} still runs {limit} s after the fault"
        time.sleep(0.02)
    return time.time() - since


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("natural-bm: error:")]


def assert_no_worker_traceback(stderr: str) -> None:
    """The workers print no traceback of their own (torchrun's agent reports the failed ranks after)."""
    assert "LostRankError" not in stderr and "pair.cc" not in stderr, stderr[-3000:]
    assert not [line for line in stderr.splitlines() if line.startswith(("[rank0]:", "[rank1]:"))], stderr[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The run's results folder, trained on 2 ranks without a fault."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    (tmp / "cfg.yaml").write_text(CONFIG)
    rc, err = finish(torchrun(tmp / "pids", "none", "train", str(tmp / "cfg.yaml"), "--out", str(tmp / "out")))
    assert rc == 0, err[-3000:]
    return tmp / "out"


def check_resumes_to(out: Path, reference: Path, pid_dir: Path) -> None:
    """The folder holds the checkpoints of epochs 0 and 1 and nothing half-written; ``--resume`` on 2 ranks
    ends with the uninterrupted run's weights, log and results, bit for bit."""
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoints", "config.json", "log.csv"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "state_epoch0000.pt", "state_epoch0001.pt", "weights_epoch0000.pt", "weights_epoch0001.pt"]
    rc, err = finish(torchrun(pid_dir, "none", "train", "--resume", str(out)))
    assert rc == 0, err[-3000:]
    resumed, whole = load_model(out / "model.pt"), load_model(reference / "model.pt")
    for name in whole.param_names:
        assert torch.equal(getattr(resumed, name), getattr(whole, name)), name
    assert (out / "log.csv").read_text() == (reference / "log.csv").read_text()
    assert json.loads((out / "results.json").read_text()) == json.loads((reference / "results.json").read_text())


def run_killed(tmp_path: Path, lost: int, reference: Path) -> None:
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    pids, out = tmp_path / "pids", tmp_path / "out"
    proc = torchrun(pids, f"{lost}:{KILL_AT}:KILL", "train", str(tmp_path / "cfg.yaml"), "--out", str(out))
    survivor = int(wait_for_file(pids / f"rank{1 - lost}.pid", proc))
    t_fault = float(wait_for_file(pids / "fault.time", proc))
    seconds_until_ended(survivor, t_fault, TIMEOUT_S + SLACK_S)
    rc, err = finish(proc)
    assert rc != 0
    assert error_lines(err) == [
        f"natural-bm: error: rank {lost} of 2 stopped answering (its process ended); this rank stops too. Start "
        f"the job again with --resume to continue from the last checkpoint (collective timeout {TIMEOUT_S} s, "
        f"${dist.ENV_COLLECTIVE_TIMEOUT})."], err[-3000:]
    assert_no_worker_traceback(err)
    check_resumes_to(out, reference, pids)


def test_a_killed_rank_ends_the_other_with_one_line_and_the_folder_resumes(tmp_path, uninterrupted):
    """Rank 1 killed (SIGKILL) in its 5th update of epoch 2: rank 0 ends with one line naming rank 1; the
    folder resumes from epoch 1's checkpoint to the uninterrupted run's weights."""
    run_killed(tmp_path, 1, uninterrupted)


@pytest.mark.slow
def test_a_killed_writer_rank_ends_the_other_and_the_folder_resumes(tmp_path, uninterrupted):
    """The same with rank 0, the one that writes the folder, killed (slow: the rank-1 case covers the
    survivor's side, and every file is written atomically)."""
    run_killed(tmp_path, 0, uninterrupted)


def test_a_frozen_rank_ends_the_other_after_the_timeout(tmp_path):
    """Rank 1 frozen (SIGSTOP) in its 5th update of epoch 2, as a rank on a lost machine: its connections stay
    open, so rank 0 waits for the collective timeout, then ends with exit status 2 and one line naming rank 1
    (its process is stopped); then rank 1 is killed (SIGKILL) and torchrun ends."""
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    pids = tmp_path / "pids"
    proc = torchrun(pids, f"1:{KILL_AT}:STOP", "train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "out"))
    survivor, frozen = (int(wait_for_file(pids / f"rank{r}.pid", proc)) for r in (0, 1))
    t_fault = float(wait_for_file(pids / "fault.time", proc))
    try:
        seconds = seconds_until_ended(survivor, t_fault, TIMEOUT_S + SLACK_S)
    finally:
        os.kill(frozen, signal.SIGKILL)
    rc, err = finish(proc)
    assert seconds >= TIMEOUT_S - 0.5, seconds  # it waited for the timeout, and no longer than the slack
    assert rc != 0 and "exitcode  : 2 " in err, err[-3000:]  # rank 0 ended by itself, with status 2
    assert error_lines(err) == [
        f"natural-bm: error: rank 1 of 2 stopped answering (no reply within {TIMEOUT_S} s; its process is "
        f"stopped); this rank stops too. Start the job again with --resume to continue from the last "
        f"checkpoint (collective timeout {TIMEOUT_S} s, ${dist.ENV_COLLECTIVE_TIMEOUT})."], err[-3000:]
    assert_no_worker_traceback(err)


# ---------------------------------------------------------------------------- in one process


def test_collective_timeout_is_60_s_by_default_and_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(dist.ENV_COLLECTIVE_TIMEOUT, raising=False)
    assert dist.collective_timeout() == 60.0 == dist.DEFAULT_COLLECTIVE_TIMEOUT_S
    monkeypatch.setenv(dist.ENV_COLLECTIVE_TIMEOUT, " 7.5 ")
    assert dist.collective_timeout() == 7.5
    assert dist.collective_timeout(3) == 3.0  # the keyword wins


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon", "1e400"])
def test_a_bad_timeout_is_refused_with_one_line_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(dist.ENV_COLLECTIVE_TIMEOUT, value)
    with pytest.raises(ValueError, match=r"^\$NATURAL_BM_COLLECTIVE_TIMEOUT must be a positive number of seconds"
                                         r".*got '" + value.replace("+", r"\+") + "'"):
        dist.collective_timeout()
    for bad in (0, -2.0, True, float("nan"), "x"):
        with pytest.raises(ValueError, match="^`timeout` must be a positive number"):
            dist.collective_timeout(bad)


@pytest.fixture
def child():
    """A sleeping child process (killed at the end)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_process_state_tells_running_stopped_and_ended(child):
    assert dist._process_state(os.getpid()) == "running"
    os.kill(child.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while dist._process_state(child.pid) != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    while dist._process_state(child.pid) != "ended":  # a zombie until reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.wait()
    assert dist._process_state(child.pid) == "ended"  # gone


@pytest.fixture
def fake_group(monkeypatch, child):
    """Rank 0 of 2 with rank 1 = ``child``, and torch's all_reduce replaced by ``calls``' failures."""
    calls = []

    def all_reduce(flat):
        calls.append(flat)
        raise calls_error[0]

    calls_error = [RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1234")]
    monkeypatch.setattr(dist, "is_distributed", lambda: True)
    monkeypatch.setattr(dist, "world_size", lambda: 2)
    monkeypatch.setattr(dist, "rank", lambda: 0)
    monkeypatch.setattr(torch.distributed, "get_backend", lambda: "gloo")
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    monkeypatch.setattr(dist, "_state", {"timeout_s": 60.0, "lost": None,
                                         "peers": [(dist._machine(), os.getpid()), (dist._machine(), child.pid)]})
    return calls, calls_error


def test_a_peer_failure_names_the_ended_rank_and_later_collectives_fail_at_once(fake_group, child):
    calls, _ = fake_group
    child.kill()
    child.wait()
    with pytest.raises(dist.LostRankError) as info:
        dist.all_reduce_sum([torch.zeros(3)])
    err = info.value
    assert isinstance(err, ConnectionError) and "\n" not in str(err)  # the CLI prints OSErrors as one line
    assert (err.ranks, err.world_size, err.seconds) == ([1], 2, 60.0)
    assert str(err).startswith("rank 1 of 2 stopped answering (its process ended); ")
    with pytest.raises(dist.LostRankError, match="^rank 1 of 2 stopped answering"):
        dist.barrier()  # at once, without another collective
    with pytest.raises(dist.LostRankError):
        dist.all_gather_rows(torch.zeros(2, 3))
    assert len(calls) == 1


def test_a_timeout_with_a_running_peer_says_it_still_runs(fake_group):
    calls, error = fake_group
    error[0] = RuntimeError("[gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 60000ms for recv operation")
    with pytest.raises(dist.LostRankError, match=r"^rank 1 of 2 stopped answering \(no reply within 60 s; its "
                                                 r"process still runs, stuck or busy for longer than the timeout\)"):
        dist.all_reduce_sum([torch.zeros(3)])


def test_other_errors_of_a_collective_pass_through(fake_group):
    calls, error = fake_group
    error[0] = RuntimeError("Tensors must be contiguous")
    with pytest.raises(RuntimeError, match="^Tensors must be contiguous$"):
        dist.all_reduce_sum([torch.zeros(3)])
    assert dist._state["lost"] is None
