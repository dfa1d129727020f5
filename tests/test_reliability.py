"""Fault injection: kills, damaged files, bad configs, full disks, concurrent runs, slow servers.

Each test reproduces one fault of the "What survives what" table in the README
and checks what must survive it, against a run that had no fault.
"""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import killed_after, one_error_line

from natural_bm import DBM, RBM, SGD
from natural_bm.callbacks import (
    AdaptiveLayerwise,
    CyclicLR,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    PeriodicSave,
    ReduceLROnPlateau,
    RemoteMonitor,
    SampleCallback,
    ScheduledLayerwise,
    SimpleLayerwise,
    SnapshotCallbackBuilder,
    load_training_state,
)
from natural_bm.cli import main
from natural_bm.estimators import AIS, log_likelihood, log_partition_exact
from natural_bm.io import exclusive_lock, save_torch_checked

CONFIG = {
    "model": {"type": "rbm", "n_hidden": 6},
    "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 200},
    "training": {"algorithm": "pcd", "k": 1, "n_chains": 20, "epochs": 4, "batch_size": 20},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
    "ais": {"n_runs": 20, "n_betas": 200, "exact": True},
    "samples": {"n_chains": 3, "n_samples": 4, "plot_every": 5},
    "seed": 3,
}
RESULT_FILES = ["model.pt", "results.json", "summary.txt", "history.png", "samples_epoch0003.png"]


def _write(folder: Path, cfg: dict, name: str = "cfg.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete 4-epoch run and the bytes of every file it wrote."""
    tmp = tmp_path_factory.mktemp("finished")
    assert main(["train", str(_write(tmp, CONFIG)), "--out", str(tmp / "run"), "--verbose", "0"]) == 0
    return tmp / "run"


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


def _weights(path: Path) -> dict:
    m = RBM.load(path)
    return {k: v.clone() for k, v in m.parameter_dict().items()}


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return all(torch.equal(wa[k], wb[k]) for k in wa)


# ---------------------------------------------------------------------------- lost or mixed results


def test_resume_of_a_finished_run_changes_nothing(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path)
    before = {p: (run / p).read_bytes() for p in RESULT_FILES}
    assert json.loads(before["results.json"])["status"] == "complete"
    assert main(["train", "--resume", str(run), "--verbose", "1"]) == 0
    assert "holds a finished run; nothing to resume" in capsys.readouterr().out
    assert {p: (run / p).read_bytes() for p in RESULT_FILES} == before


def test_resume_after_a_kill_past_the_last_checkpoint_finishes_the_run(finished, tmp_path):
    run = _copy(finished, tmp_path)
    for p in RESULT_FILES:  # killed after the final checkpoint, before any result was written
        (run / p).unlink()
    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    for p in RESULT_FILES:
        assert (run / p).is_file()
    a, b = json.loads((finished / "results.json").read_text()), json.loads((run / "results.json").read_text())
    assert a == b  # the same AIS, likelihoods and status: nothing degraded
    assert _same_weights(finished / "model.pt", run / "model.pt")


def test_resume_warns_about_an_edited_config_naming_each_changed_key(finished, tmp_path, recwarn):
    run = _copy(finished, tmp_path)
    for p in RESULT_FILES:  # killed after the final checkpoint
        (run / p).unlink()
    cfg = json.loads((run / "config.json").read_text())
    cfg["ais"]["n_betas"] = 300
    cfg["optimizer"]["lr"] = 0.01
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    [w] = [w for w in recwarn if "was edited" in str(w.message)]
    assert "ais.n_betas: 200 -> 300" in str(w.message) and "optimizer.lr: 0.05 -> 0.01" in str(w.message)
    assert json.loads((run / "results.json").read_text())["status"] == "complete"


def test_resume_of_an_unedited_config_does_not_warn(finished, tmp_path, recwarn):
    run = _copy(finished, tmp_path)
    for p in RESULT_FILES:
        (run / p).unlink()
    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    assert not [w for w in recwarn if "was edited" in str(w.message)]


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with exclusive_lock(out / ".lock"):
        assert main(["train", str(_write(tmp_path, CONFIG)), "--out", str(out), "--verbose", "0"]) == 2
        one_error_line(capsys, "in use by another natural-bm process")
        assert main(["train", "--resume", str(out)]) == 2  # no config.json yet: not a results folder
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_two_runs_started_together_never_mix(tmp_path):
    """Two processes into one folder: one wins, the other exits 2 with one line; the folder holds one run."""
    cfgs = [_write(tmp_path, {**CONFIG, "seed": s, "ais": {"n_runs": 10, "n_betas": 50}}, f"c{s}.json")
            for s in (1, 2)]
    out = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, "-m", "natural_bm.cli", "train", str(c), "--out", str(out),
                               "--verbose", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for c in cfgs]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = outs[[p.returncode for p in procs].index(2)][1].decode()
    assert loser.startswith("natural-bm: error:") and loser.count("\n") == 1
    assert ("in use by another" in loser) or ("not empty" in loser)
    seed = json.loads((out / "config.json").read_text())["seed"]
    assert _same_weights(out / "model.pt", out / "checkpoints" / "weights_epoch0003.pt")
    state = torch.load(out / "checkpoints" / "state_epoch0003.pt", weights_only=True)
    assert state["training"]["seed"] == seed


def test_diverged_run_keeps_its_last_finite_checkpoint(tmp_path, capsys):
    cfg = {**CONFIG, "schedule": {"lr": [[0, 0.05], [2, 1e38]]}, "callbacks": [{"name": "TerminateOnNaN"}]}
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out), "--verbose", "0"]) == 3
    assert "training stopped: diverged" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "diverged" and results["last_finite_epoch"] == 1 and results["epochs_run"] == 3
    assert not (out / "model.pt").exists()
    assert "status: diverged" in (out / "summary.txt").read_text()
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["state_epoch0000.pt", "state_epoch0001.pt", "weights_epoch0000.pt", "weights_epoch0001.pt"]
    assert RBM.load(out / "checkpoints" / "weights_epoch0001.pt").non_finite_parameters() == []
    # resume continues from the last finite checkpoint (and, with the same settings, diverges the same way)
    assert main(["train", "--resume", str(out), "--verbose", "0"]) == 3
    assert json.loads((out / "results.json").read_text()) == results


def test_resume_with_no_checkpoint_starts_from_the_saved_config(finished, tmp_path):
    run = tmp_path / "killed"
    run.mkdir()
    shutil.copy(finished / "config.json", run / "config.json")
    (run / "log.csv.tmp").write_text("junk")  # whatever a kill in epoch 0 left
    (run / "checkpoints").mkdir()
    with pytest.warns(RuntimeWarning, match="no intact checkpoint"):
        assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    assert json.loads((run / "results.json").read_text()) == json.loads((finished / "results.json").read_text())
    assert _same_weights(finished / "model.pt", run / "model.pt")
    assert not (run / "log.csv.tmp").exists()


# ---------------------------------------------------------------------------- stateful callbacks


X = (np.random.default_rng(0).random((60, 16)) < 0.4).astype(np.float32)


class Kill(LambdaCallback):
    """Raises at the end of epoch ``epoch``, after the checkpoint of that epoch was written."""

    def __init__(self, epoch):
        def kill(e, logs):
            if e == epoch:
                raise KeyboardInterrupt

        super().__init__(on_epoch_end=kill)


def _rbm():
    return RBM(16, 5, seed=0).compile(SGD(0.1, momentum=0.5), "pcd", n_chains=10)


def _dbm():
    return DBM([16, 6, 4], seed=0).compile(SGD(0.05), "mfpcd", k=1, n_chains=10, mf_steps=3)


def _snapshot(tmp):
    return SnapshotCallbackBuilder(6, 3, init_lr=0.1).get_callbacks(str(tmp / "snap"), monitor="loss")


STATEFUL = {
    "CyclicLR": (_rbm, lambda tmp: [CyclicLR(0.01, 0.2, step_size=4)]),
    "ReduceLROnPlateau": (_rbm, lambda tmp: [ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=1e9)]),
    "EarlyStopping": (_rbm, lambda tmp: [EarlyStopping("loss", patience=2, min_delta=1e9,
                                                       restore_best_weights=True)]),
    "ScheduledLayerwise": (_dbm, lambda tmp: [ScheduledLayerwise(start=1, duration=2, lr_factor=3.0)]),
    "SimpleLayerwise": (_dbm, lambda tmp: [SimpleLayerwise(start_epoch=5, steps=4, epochs=False)]),
    "AdaptiveLayerwise": (_dbm, lambda tmp: [AdaptiveLayerwise(min_init_epochs=1, patience=1, sig_decrease=0.5)]),
    "SnapshotCallbackBuilder": (_rbm, _snapshot),
    "ModelCheckpoint": (_rbm, lambda tmp: [ModelCheckpoint(str(tmp / "best.pt"), monitor="loss",
                                                           save_best_only=True, period=2)]),
    "SampleCallback": (_rbm, lambda tmp: [SampleCallback(savename=tmp / "s.png", n_chains=2, n_samples=2,
                                                         plot_every=3, image_shape=(4, 4), seed=1)]),
}


def _observe(cbs) -> list:
    out = []
    for cb in cbs:
        for attr in ("saved", "last_samples", "clr_iterations", "wait", "global_batch", "next_layer", "log"):
            if hasattr(cb, attr):
                v = getattr(cb, attr)
                out.append([Path(p).name for p in v] if attr == "saved" else
                           (v.tolist() if isinstance(v, np.ndarray) else v))
    return out


def _train(make_model, make_cbs, tmp, epochs=6, kill=None, resume=None):
    model = make_model()
    cbs = make_cbs(tmp)
    save = PeriodicSave(tmp / "ck" / "w.pt", opt_path=tmp / "ck" / "s.pt")
    run_cbs = [*cbs, save]
    initial = 0
    if resume is not None:
        model.load_weights(tmp / "ck" / f"w_epoch{resume:04d}.pt")
        load_training_state(model, tmp / "ck" / f"s_epoch{resume:04d}.pt", run_cbs)
        initial = resume + 1
    extra = [Kill(kill)] if kill is not None else []
    try:
        hist = model.fit(X, batch_size=10, epochs=epochs, callbacks=run_cbs + extra, verbose=0, seed=5,
                         initial_epoch=initial)
    except KeyboardInterrupt:
        return model, None, cbs
    return model, hist, cbs


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_kill_and_resume_is_bit_identical_for_stateful_callbacks(name, tmp_path):
    make_model, make_cbs = STATEFUL[name]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, hist_full, cbs_full = _train(make_model, make_cbs, tmp_path / "a")
    _, none, _ = _train(make_model, make_cbs, tmp_path / "b", kill=1)
    assert none is None
    resumed, hist, cbs = _train(make_model, make_cbs, tmp_path / "b", resume=1)
    for k, v in full.parameter_dict().items():
        assert torch.equal(v, resumed.parameter_dict()[k]), k
    full_rows = {e: logs for e, logs in zip(hist_full.epoch, _rows(hist_full), strict=True)}
    for e, logs in zip(hist.epoch, _rows(hist), strict=True):
        assert _nan_equal(logs, full_rows[e]), (e, logs, full_rows[e])
    assert hist.epoch[-1] == hist_full.epoch[-1]
    assert _observe(cbs) == _observe(cbs_full)


def _rows(hist):
    keys = sorted(hist.history)
    return [{k: hist.history[k][i] for k in keys} for i in range(len(hist.epoch))]


def _nan_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all((x == y) or (x != x and y != y) for x, y in
                                        ((a[k], b[k]) for k in a))


def test_without_the_callback_state_cyclic_lr_resumes_differently(tmp_path):
    """The check above can fail: dropping CyclicLR's state changes the resumed weights."""
    make_model, make_cbs = STATEFUL["CyclicLR"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, _, _ = _train(make_model, make_cbs, tmp_path / "a")
    _train(make_model, make_cbs, tmp_path / "b", kill=1)
    state = torch.load(tmp_path / "b" / "ck" / "s_epoch0001.pt", weights_only=True)
    state.pop("callbacks")
    save_torch_checked({k: v for k, v in state.items() if k != "checksum"}, tmp_path / "b" / "ck" / "s_epoch0001.pt")
    resumed, _, _ = _train(make_model, make_cbs, tmp_path / "b", resume=1)
    assert not torch.equal(full.W, resumed.W)


# ---------------------------------------------------------------------------- damaged files


def _flip_bit_in(path: Path, needle: bytes) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0
    data[at + 1] ^= 0x04
    path.write_bytes(bytes(data))


def test_one_flipped_bit_is_detected(finished, tmp_path, capsys):
    path = tmp_path / "m.pt"
    shutil.copy(finished / "model.pt", path)
    w = RBM.load(path).W
    _flip_bit_in(path, w.detach().numpy().tobytes()[:16])
    with pytest.raises(ValueError, match="damaged: its checksum does not match"):
        RBM.load(path)
    assert main(["logz", str(path), "--n-runs", "5", "--n-betas", "20", "--data", "none"]) == 2
    one_error_line(capsys, "damaged")


def test_a_damaged_latest_checkpoint_falls_back_with_a_warning(finished, tmp_path):
    run = _copy(finished, tmp_path)
    for p in RESULT_FILES:
        (run / p).unlink()
    state = run / "checkpoints" / "state_epoch0003.pt"
    state.write_bytes(state.read_bytes()[:300])  # truncated
    (run / "checkpoints" / ".weights_epoch0003.pt.x1y2.tmp").write_bytes(b"half")  # orphans of a kill
    (run / ".log.csv.abcd.tmp").write_text("half")
    with pytest.warns(RuntimeWarning, match="skipping checkpoint of epoch 3: .*state_epoch0003.pt"):
        assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    assert list(run.rglob("*.tmp")) == []
    assert _same_weights(finished / "model.pt", run / "model.pt")  # epoch 3 retrained bit-identically
    assert json.loads((run / "results.json").read_text()) == json.loads((finished / "results.json").read_text())


def _payload(finished):
    return {k: v for k, v in torch.load(finished / "model.pt", weights_only=True).items() if k != "checksum"}


@pytest.mark.parametrize("case", ["text", "random", "unknown_optimizer", "int64", "empty"])
def test_hostile_model_files_give_one_line(case, finished, tmp_path, capsys):
    path = tmp_path / "m.pt"
    if case == "text":
        path.write_text("these are not the weights you are looking for\n")
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "unknown_optimizer":
        p = _payload(finished)
        p["training"]["optimizer"]["class"] = "Sneaky"
        save_torch_checked(p, path)
    else:
        p = _payload(finished)
        p["dtype"] = "int64"
        save_torch_checked(p, path)
    with pytest.raises(ValueError):
        RBM.load(path)
    assert main(["logz", str(path), "--n-runs", "5", "--n-betas", "20", "--data", "none"]) == 2
    err = one_error_line(capsys, str(path))
    expected = {"unknown_optimizer": "unknown optimizer class 'Sneaky'", "int64": "not a floating-point type"}
    assert expected.get(case, "not a readable model file") in err
    assert "weights_only" not in err


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02binary\xff\n", b"epoch,loss\n0,1.5\n1,1."])
def test_damaged_log_on_resume_is_one_line_naming_the_file(content, finished, tmp_path, capsys):
    run = _copy(finished, tmp_path)
    (run / "results.json").unlink()
    for p in ("weights_epoch0003.pt", "state_epoch0003.pt"):
        (run / "checkpoints" / p).unlink()
    (run / "log.csv").write_bytes(content)
    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 2
    one_error_line(capsys, str(run / "log.csv"), "move it away")


def test_log_behind_the_checkpoint_warns_and_names_the_missing_epochs(finished, tmp_path):
    """An older log.csv restored over a run whose checkpoints are newer: the resume goes on from the
    newest checkpoint, and says which epochs the log lacks."""
    run = _copy(finished, tmp_path)
    (run / "results.json").unlink()
    for p in ("weights_epoch0003.pt", "state_epoch0003.pt"):
        (run / "checkpoints" / p).unlink()
    lines = (run / "log.csv").read_text().splitlines(keepends=True)
    (run / "log.csv").write_text("".join(lines[:2]))  # header and epoch 0: epochs 1 and 2 are gone
    with pytest.warns(RuntimeWarning, match=r"log.csv has no rows for epochs 1, 2, which the checkpoint of epoch 2"):
        assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    epochs = pd.read_csv(run / "log.csv")["epoch"].tolist()
    assert epochs == [0, 3]


# ---------------------------------------------------------------------------- configs and output folders


@pytest.mark.parametrize("section,key,value,message", [
    ("ais", "n_runs", 0, "ais.n_runs must be an integer >= 2, got 0"),
    ("ais", "n_betas", 1, "ais.n_betas must be an integer >= 2, got 1"),
    ("samples", "image_shape", [4, 4], "samples.image_shape [4, 4] covers 16 pixels but the data has 9 columns"),
    ("optimizer", "lr", math.nan, "optimizer.lr must be a finite number > 0"),
    ("training", "batch_size", 0, "training.batch_size must be an integer >= 1, got 0"),
    ("training", "batch_size", 20.5, "training.batch_size must be an integer >= 1, got 20.5 (float)"),
    ("training", "epochs", 2.0, "training.epochs must be an integer >= 1, got 2.0 (float)"),
    ("training", "epochs", "3", "training.epochs must be an integer >= 1, got the string '3' (write it without"),
    ("samples", "n_chains", 0, "samples.n_chains must be an integer >= 1, got 0"),
    ("pretrain", "epochs", -1, "pretrain.epochs must be an integer >= 0, got -1"),
    ("ais", "parity", 2, "ais.parity must be 'auto', 0 or 1, got 2"),
    ("pretrain", "max_norm", 0, "pretrain.max_norm must be"),
    ("pretrain", "epochs", [2, -1], "pretrain.epochs[1] must be an integer >= 0, got -1"),
    ("pretrain", "epochs", 2, "pretrain.epochs is for DBMs"),
    ("pretrain", "schedule", {"k": {"from": 1}}, "pretrain.schedule.k as a ramp must have the keys"),
    ("training", "pretrain_epochs", 3, "training.pretrain_epochs has moved: write pretrain: {epochs: N}"),
    ("model", "weight_scale", "big", "model.weight_scale must be a number > 0, got the string 'big'"),
    ("optimizer", "momentum", 1.0, "optimizer.momentum must be a finite number >= 0 and < 1, got 1.0"),
    ("data", "kind", "binary",
     "data.kind must be 'auto', 'probability', 'sampled', 'threshold', 'stochastic', 'real' or 'standardized'"),
    ("training", "jit_compile", "yes", "training.jit_compile must be true, false or 'auto'"),
    (None, "seed", -1, "seed must be an integer >= 0 and <= 9.22337e+18, got -1"),
])
def test_bad_config_values_are_refused_before_anything_is_written(section, key, value, message, tmp_path,
                                                                   capsys):
    cfg = json.loads(json.dumps(CONFIG))
    if section is None:
        cfg[key] = value
    else:
        cfg.setdefault(section, {})[key] = value
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out)]) == 2
    one_error_line(capsys, message)
    assert not out.exists()


def test_yaml_strings_and_missing_sections(tmp_path, capsys):
    text = ("model: {type: rbm, n_hidden: 6}\ndata: {name: bars_and_stripes, size: 3, n_samples: 50}\n"
            "training: {epochs: 1, batch_size: 10}\noptimizer: {lr: 1e-2}\nais: {n_runs: 5, n_betas: 20}\n")
    (tmp_path / "ok.yaml").write_text(text)  # YAML reads 1e-2 as a string: accepted as a number
    assert main(["train", str(tmp_path / "ok.yaml"), "--out", str(tmp_path / "ok"), "--verbose", "0"]) == 0
    assert json.loads((tmp_path / "ok" / "config.json").read_text())["optimizer"]["lr"] == 0.01
    (tmp_path / "bad.yaml").write_text(text.replace("epochs: 1", "epochs: 1e9"))
    assert main(["train", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "bad")]) == 2
    one_error_line(capsys, "training.epochs must be an integer >= 1, got the string '1e9'")
    (tmp_path / "nomodel.json").write_text(json.dumps({"data": CONFIG["data"]}))
    assert main(["train", str(tmp_path / "nomodel.json"), "--out", str(tmp_path / "nm")]) == 2
    one_error_line(capsys, "no 'model' section")
    assert main(["train", str(_write(tmp_path, CONFIG)), "--out", ""]) == 2
    one_error_line(capsys, "must not be empty")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "nm").exists()


def test_output_paths_that_cannot_be_folders(tmp_path, capsys):
    cfg = _write(tmp_path, CONFIG)
    (tmp_path / "afile").write_text("keep me")
    for out, message in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "sub", "which is a file")):
        assert main(["train", str(cfg), "--out", str(out)]) == 2
        one_error_line(capsys, message)
    assert (tmp_path / "afile").read_text() == "keep me"


def test_a_full_disk_is_one_line_and_keeps_the_good_files(finished, tmp_path):
    run = _copy(finished, tmp_path)
    (run / "results.json").unlink()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    # a 1 KiB file-size limit: every write of a model file fails with EFBIG, as on a full disk
    cmd = f"ulimit -f 1; exec {sys.executable} -m natural_bm.cli train --resume {run} --verbose 0"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, env=env, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("natural-bm:")]
    assert len(lines) == 1 and "File too large" in lines[0] and "Traceback" not in err
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert {p: after[p] for p in before} == before
    assert list(run.rglob("*.tmp")) == []


# ---------------------------------------------------------------------------- numbers and servers


def test_estimators_refuse_non_finite_parameters_by_name():
    m = RBM(6, 3, seed=0, dtype=torch.float64)
    with torch.no_grad():
        m.W[0, 0] = float("nan")
    x = np.zeros((4, 6))
    for call in (lambda: log_partition_exact(m), lambda: log_likelihood(m, x, 1.0),
                 lambda: AIS(m, n_runs=4, n_betas=10, base="uniform")):
        with pytest.raises(ValueError, match=r"parameter\(s\) \['W'\] hold NaN or inf"):
            call()
    good = RBM(6, 3, seed=0, dtype=torch.float64)
    with pytest.raises(ValueError, match="`log_z` must be a finite number"):
        log_likelihood(good, x, float("-inf"))


def test_a_model_below_the_uniform_baseline_warns():
    m = RBM(9, 3, seed=0, dtype=torch.float64)
    with torch.no_grad():
        m.vbias.fill_(-20.0)  # all-ones data is then very unlikely: far below 9 log 2 nats
    x = np.ones((5, 9))
    with pytest.warns(RuntimeWarning, match="below the uniform model's -6.24"):
        ll, _ = log_likelihood(m, x, log_partition_exact(m))
    assert ll < -9 * math.log(2)


def _trickling_server(stop: threading.Event):
    """Answers every request with one byte every 0.3 s (for at most 20 s)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)

    def serve():
        conns = []
        t_end = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < t_end:
            try:
                c, _ = srv.accept()
                c.recv(65536)
                conns.append(c)
            except (TimeoutError, OSError):
                pass
            for c in conns:
                try:
                    c.send(b"H")
                except OSError:
                    pass
            time.sleep(0.3)
        for c in conns:
            c.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def test_remote_monitor_deadline_bounds_a_trickling_server():
    stop = threading.Event()
    port = _trickling_server(stop)
    monitor = RemoteMonitor(root=f"http://127.0.0.1:{port}", timeout=1.0)
    m = RBM(9, 3, seed=0).compile(SGD(0.1), "cd")
    t0 = time.monotonic()
    try:
        with pytest.warns(RuntimeWarning, match="no complete answer within 1 s"):
            hist = m.fit(X[:, :9], batch_size=20, epochs=2, callbacks=[monitor], verbose=0, seed=0)
    finally:
        stop.set()
    assert hist.epoch == [0, 1]
    assert 0.9 < monitor.last_seconds < 1.6
    assert time.monotonic() - t0 < 6


@pytest.mark.parametrize("root", ["localhost:9000", "ftp://host", "http://", "http://host:notaport"])
def test_remote_monitor_malformed_root_fails_at_start(root, tmp_path, capsys):
    with pytest.raises(ValueError, match="RemoteMonitor root"):
        RemoteMonitor(root=root)
    cfg = {**CONFIG, "callbacks": [{"name": "RemoteMonitor", "args": {"root": root}}]}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r")]) == 2
    one_error_line(capsys, "RemoteMonitor root")
    assert not (tmp_path / "r").exists()


def test_sparse_and_meta_data_are_type_errors_naming_the_argument():
    m = RBM(9, 3, seed=0).compile(SGD(0.1), "cd")
    dense = torch.tensor(X[:, :9])
    with pytest.raises(TypeError, match="`x` is a sparse tensor"):
        m.fit(dense.to_sparse(), epochs=1, verbose=0)
    with pytest.raises(TypeError, match="`validation_data` is on the meta device"):
        m.fit(dense, epochs=1, verbose=0, validation_data=dense.to("meta"))


def test_checkpoint_retention_keeps_the_newest_and_the_best(tmp_path):
    from natural_bm.callbacks import Callback

    class Feed(Callback):
        produces_logs = True

        def on_epoch_end(self, epoch, logs=None):
            logs["val_pll"] = [-5.0, -3.0, -1.0, -4.0, -6.0, -7.0][epoch]  # best at epoch 2

    save = PeriodicSave(tmp_path / "w.pt", opt_path=tmp_path / "s.pt", keep_last=2, keep_best="val_pll")
    m = RBM(9, 3, seed=0).compile(SGD(0.1), "cd")
    m.fit(X[:, :9], batch_size=20, epochs=6, callbacks=[Feed(), save], verbose=0, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "s_epoch0002.pt", "s_epoch0004.pt", "s_epoch0005.pt", "w_epoch0002.pt", "w_epoch0004.pt", "w_epoch0005.pt"]
    assert save.best_epoch == 2 and save.saved_epochs == [2, 4, 5]
    with pytest.raises(ValueError, match="keep_last"):
        PeriodicSave(tmp_path / "w.pt", keep_last=0)


PRETRAIN_CONFIG = {
    "model": {"type": "dbm", "layer_sizes": [9, 6, 4]}, "data": {"name": "bars_and_stripes", "size": 3},
    "pretrain": {"epochs": [3, 3], "lr": 0.1, "schedule": {"momentum": [[0, 0.5], [1, 0.9]],
                                                            "k": {"from": 1, "to": 3, "every": 1}}},
    "training": {"epochs": 2, "batch_size": 10, "n_chains": 10, "mf_steps": 3},
    "ais": {"n_runs": 10, "n_betas": 50}, "samples": {"plot_every": 1000}, "seed": 0,
}


@pytest.fixture(scope="module")
def pretrained_whole(tmp_path_factory):
    """The config of a DBM run with pre-training, and the folder of its uninterrupted run."""
    tmp = tmp_path_factory.mktemp("pretrain")
    cfg_path = tmp / "cfg.json"
    cfg_path.write_text(json.dumps(PRETRAIN_CONFIG))
    assert main(["train", str(cfg_path), "--out", str(tmp / "whole"), "--verbose", "0"]) == 0
    return cfg_path, tmp / "whole"


@pytest.mark.parametrize("kill_at", [("pretrain/rbm0", 1), ("pretrain/rbm1", 0), ("run/checkpoints", 0)])
def test_a_killed_dbm_run_resumes_bit_identically_in_place_and_from_a_snapshot(tmp_path, monkeypatch, kill_at,
                                                                              pretrained_whole):
    """Pre-training checkpoints every RBM every epoch: a run killed after RBM 0's epoch 1 or RBM 1's
    epoch 0 (or after the DBM's epoch 0) and resumed ends with the uninterrupted run's weights and
    pre-training logs; so does a copy made by ``natural-bm snapshot`` (one tar file) and resumed
    in another folder."""
    cfg_path, whole_run = pretrained_whole
    killed = tmp_path / "run"
    with killed_after(monkeypatch, kill_at):
        assert main(["train", str(cfg_path), "--out", str(killed), "--verbose", "0"]) == 130
    pretrain = killed / "pretrain"
    kept = sorted(str(p.relative_to(pretrain)) for p in pretrain.rglob("weights_epoch*.pt"))
    expected = {"pretrain/rbm0": {0: 1}, "pretrain/rbm1": {0: 2, 1: 0}, "run/checkpoints": {0: 2, 1: 2}}[kill_at[0]]
    assert kept == [f"rbm{i}/checkpoints/weights_epoch{e:04d}.pt" for i, e in expected.items()]

    assert main(["snapshot", str(killed), str(tmp_path / "snap.tar")]) == 0
    with tarfile.open(tmp_path / "snap.tar") as tar:
        packed = sorted(tar.getnames())
        tar.extractall(tmp_path / "moved", filter="data")
    if kill_at[0] == "run/checkpoints":  # the DBM's checkpoint; no pre-training files needed
        assert [n for n in packed if n.endswith(".pt")] == ["checkpoints/state_epoch0000.pt",
                                                          "checkpoints/weights_epoch0000.pt"]
    else:
        assert [n for n in packed if n.endswith(".pt")] == sorted(
            f"pretrain/rbm{i}/checkpoints/{kind}_epoch{e:04d}.pt" for i, e in expected.items()
            for kind in ("state", "weights"))
    assert {"config.json", "pretrain_rbm0.csv"} <= set(packed)

    whole = DBM.load(whole_run / "model.pt")
    for folder in (killed, tmp_path / "moved"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (the no-checkpoint-yet warning; AIS's)
            assert main(["train", "--resume", str(folder), "--verbose", "0"]) == 0
        resumed = DBM.load(folder / "model.pt")
        for name in whole.param_names:
            assert torch.equal(getattr(whole, name), getattr(resumed, name)), (folder, name)
        for layer in (0, 1):
            name = f"pretrain_rbm{layer}.csv"
            assert (whole_run / name).read_text() == (folder / name).read_text()


def test_resume_during_pretraining_says_so(tmp_path, monkeypatch, pretrained_whole):
    cfg_path, _ = pretrained_whole
    with killed_after(monkeypatch, ("pretrain/rbm0", 0)):  # the first checkpoint written
        assert main(["train", str(cfg_path), "--out", str(tmp_path / "run"), "--verbose", "0"]) == 130
    with pytest.warns(RuntimeWarning, match="continues its pre-training"):
        assert main(["train", "--resume", str(tmp_path / "run"), "--verbose", "0"]) == 0
    assert main(["snapshot", str(tmp_path / "nothing"), str(tmp_path / "x.tar")]) == 2  # not a results folder
