"""natural-bm train: trajectory AIS on by default for persistent-chain runs (issue 31), with an off switch and a
re-anchoring setting; the self-tuning tempering ladder from a config."""

import json
import math

import numpy as np
import pandas as pd

from natural_bm import load_model
from natural_bm.cli import main
from natural_bm.estimators import log_partition_exact

CONFIG = {
    "model": {"type": "rbm", "n_hidden": 6},
    "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 300},
    "training": {"algorithm": "pcd", "k": 1, "n_chains": 20, "epochs": 4, "batch_size": 20},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
    "ais": {"n_runs": 20, "n_betas": 200},
    "samples": {"n_chains": 2, "n_samples": 2, "plot_every": 2},
    "seed": 3,
}


def _run(tmp_path, cfg, *extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "r"
    assert main(["train", str(path), "--out", str(out), "--verbose", "0", *extra]) == 0
    return out, pd.read_csv(out / "log.csv"), json.loads((out / "config.json").read_text())


def test_a_persistent_chain_run_logs_log_z_every_epoch_by_default(tmp_path):
    out, log, cfg = _run(tmp_path, CONFIG)
    assert cfg["ais"]["trajectory"] is True  # auto, resolved and recorded
    assert log["logZ_trajectory"].notna().all() and len(log) == 4
    # a 9-6 RBM: the last epoch's trajectory estimate against the exact log Z of the saved model
    exact = log_partition_exact(load_model(out / "model.pt"))
    assert abs(float(log["logZ_trajectory"].iloc[-1]) - exact) < 0.1
    assert log["train_ll_trajectory"].notna().all()


def test_off_switch_and_algorithms_without_persistent_chains(tmp_path):
    _, log, cfg = _run(tmp_path, CONFIG, "--set", "ais.trajectory=false")
    assert cfg["ais"]["trajectory"] is False and "logZ_trajectory" not in log
    cd = {**CONFIG, "training": {**CONFIG["training"], "algorithm": "cd"}}
    _, log, cfg = _run(tmp_path / "cd", cd)
    assert cfg["ais"]["trajectory"] is False and "logZ_trajectory" not in log  # CD keeps no chains: off


def test_reanchoring_logs_the_drift(tmp_path):
    _, log, _ = _run(tmp_path, CONFIG, "--set", "ais.trajectory_reanchor_every=2", "--set", "ais.trajectory_betas=300")
    drift = log["logZ_drift"]
    assert drift.notna().sum() == 2 and all(abs(d) < 1.0 for d in drift.dropna())  # epochs 1 and 3


def test_an_adaptive_tempering_ladder_from_a_config(tmp_path):
    pt = {**CONFIG, "training": {**CONFIG["training"], "algorithm": "pt", "n_temperatures": 3, "min_beta": 0.3,
                                 "adaptive_ladder": True, "swap_target": 0.25}}
    out, log, cfg = _run(tmp_path, pt)
    assert cfg["training"]["adaptive_ladder"] is True
    rates = [r for r in log["swap_rate_min"].tolist() + log["swap_rate_max"].tolist() if not math.isnan(r)]
    assert rates and all(0 <= r <= 1 for r in rates) and (log["n_temperatures"] >= 2).all()
    assert load_model(out / "model.pt").trainer.algorithm.adaptive
    np.testing.assert_array_equal(log["epoch"], np.arange(4))
    bad = {**pt, "training": {**pt["training"], "swap_target": 1.5}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["train", str(tmp_path / "bad.json"), "--out", str(tmp_path / "b"), "--verbose", "0"]) == 2
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())  # refused before writing


def test_a_resume_may_switch_the_trajectory_off_and_a_failed_resume_keeps_the_config(tmp_path, monkeypatch, capsys,
                                                                                      recwarn):
    """ais.* may change on --resume: a finished run extended by --set training.epochs continues, and one
    started with the trajectory AIS continues without it (the checkpoint's trajectory state is dropped,
    with a note; the log has no trajectory values after the checkpoint); a resume that fails while loading
    its checkpoint leaves config.json as it was."""
    import importlib

    train_module = importlib.import_module("natural_bm.run.train")  # (the package's `train` is the function)

    cfg = {**CONFIG, "training": {**CONFIG["training"], "epochs": 2}}
    out, log, saved = _run(tmp_path, cfg)
    assert saved["ais"]["trajectory"] is True and log["logZ_trajectory"].notna().all()
    before = (out / "config.json").read_text()

    def broken(*args, **kwargs):
        raise ValueError("the checkpoint could not be read")

    with monkeypatch.context() as m:
        m.setattr(train_module, "restore_checkpoint", broken)
        assert main(["train", "--resume", str(out), "--set", "training.epochs=4", "--set", "ais.trajectory=false",
                     "--verbose", "0"]) == 2
    assert (out / "config.json").read_text() == before  # the failed resume recorded nothing
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--set", "training.epochs=4", "--set", "ais.trajectory=false",
                 "--verbose", "2"]) == 0
    assert "TrajectoryAISCallback switched off from epoch 2" in capsys.readouterr().out
    assert not [w for w in recwarn if "was edited" in str(w.message)]  # a --set is no hand edit
    log = pd.read_csv(out / "log.csv")
    assert len(log) == 4 and json.loads((out / "config.json").read_text())["ais"]["trajectory"] is False
    assert log["logZ_trajectory"].iloc[:2].notna().all() and log["logZ_trajectory"].iloc[2:].isna().all()
