"""DBNs in ``natural-bm train`` (issue 30 part 3): the greedy stack trained from the pretrain section with
per-RBM, per-epoch checkpoints, resumed bit-identically after a kill between RBMs or inside one; the top
RBM's log Z and the variational bound in results.json, equal to the estimators run directly on the model
file; a bottom RBM reused from model.init_from; and the configs a DBN cannot run, refused in one line."""

import json
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import killed_after

from natural_bm import DBN, RBM, SGD, load_model
from natural_bm.callbacks import GibbsStepsScheduler, MomentumRateScheduler
from natural_bm.cli import main
from natural_bm.datasets import bars_and_stripes
from natural_bm.estimators import dbn_log_likelihood_bound, log_partition_exact
from natural_bm.run import ConfigError, resolve_config
from natural_bm.run.data import load_data
from natural_bm.training import pretrain_dbn

CONFIG = {
    "model": {"type": "dbn", "layer_sizes": [9, 8, 6, 10]},
    "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 200},
    "pretrain": {"epochs": 2, "lr": 0.1, "l2": 0.0002,
                 "schedule": {"momentum": [[0, 0.5], [1, 0.9]], "k": {"from": 1, "to": 2, "every": 1}}},
    "training": {"batch_size": 20},
    "ais": {"n_runs": 10, "n_betas": 100, "reverse": True, "reverse_gibbs": 20, "exact": True},
    "samples": {"n_chains": 2, "n_samples": 3, "plot_every": 5},
    "seed": 0,
}


def _write(folder: Path, cfg: dict, name: str = "cfg.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(cfg))
    return path


def _arrays(path: Path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _results(run: Path) -> dict:
    out = json.loads((run / "results.json").read_text())
    out.pop("provenance")  # (wall time, command)
    return out


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The config file and the folder of an uninterrupted tiny DBN run."""
    tmp = tmp_path_factory.mktemp("dbn")
    cfg_path = _write(tmp, CONFIG)
    assert main(["train", str(cfg_path), "--out", str(tmp / "run"), "--verbose", "0"]) == 0
    return cfg_path, tmp / "run"


def test_a_dbn_run_writes_its_model_bound_and_provenance(whole):
    _, run = whole
    assert {"config.json", "model.npz", "results.json", "summary.txt", "samples.png", "log.csv",
            "pretrain_rbm0.csv", "pretrain_rbm1.csv", "pretrain_rbm2.csv"} <= {p.name for p in run.iterdir()}
    results = json.loads((run / "results.json").read_text())
    assert (results["status"], results["rbm_epochs"], results["model_file"]) == ("complete", [2, 2, 2], "model.npz")
    assert (results["runs"], results["betas"], results["bound_samples"]) == (10, 100, 10)
    prov = results["provenance"]
    assert prov["command"] == shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])  # (the process's: pytest's here)
    assert prov["wall_time_s"] > 0 and prov["threads"] == torch.get_num_threads()
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("rbm,epoch,") and len(log) == 1 + 3 * 2

    dbn = load_model(run / "model.npz")
    assert dbn.layer_sizes == [9, 8, 6, 10]
    # the estimators run directly on the model file give the same figures
    assert results["logZ_exact"] == pytest.approx(log_partition_exact(dbn.top), abs=1e-9)
    _, valid, test, _ = load_data(resolve_config(CONFIG))
    for name, rows in (("valid", valid), ("test", test)):
        bound, se = dbn_log_likelihood_bound(dbn, rows, results["logZ"], n_samples=10, seed=CONFIG["seed"])
        assert (results[f"{name}_ll"], results[f"{name}_ll_stderr"]) == (bound, se)
        assert results[f"{name}_ll_reverse"] == pytest.approx(bound - (results["logZ_reverse"] - results["logZ"]),
                                                              abs=1e-12)
        assert results[f"{name}_ll_exact"] == pytest.approx(bound - (results["logZ_exact"] - results["logZ"]),
                                                            abs=1e-12)
    # a 6 x 10 top RBM: AIS close to its exact log Z
    for key in ("logZ", "logZ_reverse"):
        assert abs(results[key] - results["logZ_exact"]) < 0.2


def test_the_run_trains_the_stack_pretrain_dbn_trains_with_the_pretrain_settings(whole):
    """The run's DBN is, bit for bit, what ``pretrain_dbn`` gives with the pretrain section's settings (SGD lr
    and momentum schedule, CD-k with the k schedule, weight cost, batch size, seed)."""
    _, run = whole
    x, _, _, _ = load_data(resolve_config(CONFIG))
    direct = DBN([9, 8, 6, 10], seed=CONFIG["seed"])
    schedules = [MomentumRateScheduler(lambda e: 0.5 if e < 1 else 0.9), GibbsStepsScheduler(lambda e: min(2, 1 + e))]
    pretrain_dbn(direct, x, epochs=2, batch_size=20, optimizer_factory=lambda layer: SGD(0.1, 0.5), algorithm="cd",
                 seed=CONFIG["seed"], callbacks_factory=lambda layer: list(schedules), l2=0.0002, max_norm=None, k=1)
    trained = load_model(run / "model.npz")
    for a, b in zip(direct.rbms, trained.rbms, strict=True):
        for name, p in a.parameter_dict().items():
            assert torch.equal(p, b.parameter_dict()[name]), name


@pytest.mark.parametrize("kill_at", [("pretrain/rbm0", 1), ("pretrain/rbm1", 0), ("pretrain/rbm2", 1)])
def test_a_killed_dbn_run_resumes_bit_identically(tmp_path, monkeypatch, kill_at, whole):
    """Killed after RBM 0's last epoch (between RBMs), after RBM 1's first (inside one) or after the last
    RBM's last epoch (before the finish), and resumed: the same model file, logs and results."""
    cfg_path, whole_run = whole
    run = tmp_path / "run"
    with killed_after(monkeypatch, kill_at):
        assert main(["train", str(cfg_path), "--out", str(run), "--verbose", "0"]) == 130
    assert not (run / "results.json").exists() and not (run / "model.npz").exists()
    kept = sorted(str(p.relative_to(run / "pretrain")) for p in (run / "pretrain").rglob("weights_epoch*.pt"))
    expected = {"pretrain/rbm0": {0: 1}, "pretrain/rbm1": {0: 1, 1: 0}, "pretrain/rbm2": {0: 1, 1: 1, 2: 1}}[kill_at[0]]
    assert kept == [f"rbm{i}/checkpoints/weights_epoch{e:04d}.pt" for i, e in expected.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a DBN's resume from its RBMs' checkpoints is no fault
        assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    a, b = _arrays(whole_run / "model.npz"), _arrays(run / "model.npz")
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    for name in ("pretrain_rbm0.csv", "pretrain_rbm1.csv", "pretrain_rbm2.csv", "log.csv"):
        assert (whole_run / name).read_text() == (run / name).read_text(), name
    assert _results(run) == _results(whole_run)
    before = (run / "results.json").read_bytes()
    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0  # finished: nothing is rewritten
    assert (run / "results.json").read_bytes() == before


def test_the_bottom_rbm_comes_from_init_from_unchanged(tmp_path):
    x = bars_and_stripes(100, 3, seed=5)
    bottom = RBM(9, 8, seed=7)
    bottom.compile(SGD(0.1), "cd", k=1)
    bottom.fit(x, batch_size=20, epochs=2, verbose=0, seed=1)
    bottom.save(tmp_path / "bottom.pt")
    cfg = {**CONFIG, "model": {**CONFIG["model"], "init_from": str(tmp_path / "bottom.pt")}}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "run"), "--verbose", "0"]) == 0
    dbn = load_model(tmp_path / "run" / "model.npz")
    for name, p in bottom.parameter_dict().items():
        assert torch.equal(dbn.rbms[0].parameter_dict()[name], p), name
    assert not (tmp_path / "run" / "pretrain_rbm0.csv").exists()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["rbm_epochs"] == [0, 2, 2]
    # a list trains the loaded RBM further
    cfg["pretrain"] = {**CONFIG["pretrain"], "epochs": [1, 2, 2]}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "more"), "--verbose", "0"]) == 0
    more = load_model(tmp_path / "more" / "model.npz")
    assert not torch.equal(more.rbms[0].W, bottom.W) and (tmp_path / "more" / "pretrain_rbm0.csv").is_file()


@pytest.mark.parametrize("change,message", [
    ({"model": {"type": "dbn", "layer_sizes": [9, 8]}}, "model.layer_sizes with at least 3 entries"),
    ({"model": {"type": "dbn"}}, "model.layer_sizes with at least 3 entries"),
    ({"model": {"type": "dbn", "layer_sizes": [9, 8, 6], "units": ["gaussian", "bernoulli", "bernoulli"]}},
     "model.units: a DBN's layers are binary"),
    ({"model": {"type": "dbn", "layer_sizes": [9, 8, 6], "topology": {0: [1]}}}, "model.topology is for DBMs"),
    ({"pretrain": {"epochs": 0}}, "pretrain.epochs: a DBN trains its RBMs"),
    ({"pretrain": {"epochs": [1, 1]}}, "pretrain.epochs lists 2 numbers but the DBN trains 3 RBMs"),
    ({"training": {"epochs": 5}}, "training.epochs is for the joint training"),
    ({"training": {"algorithm": "pcd"}}, "training.algorithm: a DBN's RBMs train with pretrain.algorithm"),
    ({"optimizer": {"lr": 0.1}}, "optimizer.lr is for the joint training"),
    ({"schedule": {"lr": [[0, 0.1]]}}, "schedule.lr is for the joint training"),
    ({"callbacks": [{"name": "TerminateOnNaN"}]}, "callbacks are given to a joint training phase"),
    ({"ais": {"epochs": [0]}}, "ais.epochs is for RBMs and DBMs"),
    ({"ais": {"importance_samples": 10}}, "ais.importance_samples is for RBMs and DBMs"),
    ({"data": {"name": "digits", "kind": "probability"}}, "data.kind: a DBN's test figure"),
    ({"data": {"name": "mnist", "kind": "stochastic", "eval_kind": "probability"}}, "data.kind: a DBN's test figure"),
])
def test_configs_a_dbn_cannot_run_are_refused_naming_the_key(change, message):
    cfg = json.loads(json.dumps(CONFIG))
    for section, value in change.items():
        cfg[section] = value if section in ("model", "callbacks") else {**cfg.get(section, {}), **value}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve_config(cfg)


def test_data_a_dbn_cannot_train_or_score_is_refused_before_anything_is_written(tmp_path, capsys):
    rng = np.random.default_rng(0)
    grey = rng.random((60, 9)).astype(np.float32)
    np.save(tmp_path / "grey.npy", grey)
    np.save(tmp_path / "big.npy", grey * 3)
    cfg = {**CONFIG, "data": {"name": "files", "train": str(tmp_path / "grey.npy"), "test_fraction": 0.2}}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r1")]) == 2
    assert "the test rows must be binary (0 or 1) for a DBN's test figure" in capsys.readouterr().err
    cfg["data"] = {"name": "files", "train": str(tmp_path / "big.npy")}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r2")]) == 2
    assert "must lie in [0, 1] for a DBN" in capsys.readouterr().err
    cfg["data"] = {**CONFIG["data"]}
    cfg["model"] = {**CONFIG["model"], "init_from": str(tmp_path / "nothing.pt")}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r3")]) == 2
    assert "model.init_from: no model file at" in capsys.readouterr().err
    RBM(9, 5).save(tmp_path / "wrong.pt")
    cfg["model"]["init_from"] = str(tmp_path / "wrong.pt")
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r4")]) == 2
    assert "model.init_from (a DBN's init_from is its bottom RBM)" in capsys.readouterr().err
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 5))
