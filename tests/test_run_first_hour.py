"""The first hour of a new user, on the run side (issue 36 part 6): her own real-valued files standardised from
a config (statistics of the training split only, recorded beside the model for scoring), Gaussian units on
unscaled data warned about, threads as a config key, her own callbacks by import path, monitored keys the run
never logs refused before training, a best checkpoint that exists for every run, the exact log Z instead of
a long AIS for small models, and YAML errors that keep their line and column."""

import json
import math
import re
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from natural_bm import RBM, load_model
from natural_bm.callbacks.periodic_save import read_training_state
from natural_bm.cli import main
from natural_bm.datasets import load_files
from natural_bm.estimators import AIS, log_likelihood, log_partition_exact
from natural_bm.run import ConfigError, read_config, resolve_config
from natural_bm.run import train as run_train
from natural_bm.run.build import build_model
from natural_bm.run.config import callback_class
from natural_bm.run.data import DataTransform, evaluation_transform, load_splits, run_file_rows
from natural_bm.run.estimates import log_z_plan

ROOT = Path(__file__).resolve().parents[1]
GAUSSIAN = {"model": {"type": "rbm", "n_hidden": 4, "units": ["gaussian", "bernoulli"]},
            "training": {"epochs": 2, "batch_size": 20, "n_chains": 10},
            "ais": {"n_runs": 4, "n_betas": 20}, "samples": {"n_chains": 1, "n_samples": 1, "plot_every": 1},
            "seed": 0}
BINARY = {"model": {"type": "rbm", "n_hidden": 5}, "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 60},
          "training": {"epochs": 2, "batch_size": 20, "n_chains": 10}, "ais": {"n_runs": 4, "n_betas": 20},
          "samples": {"n_chains": 1, "n_samples": 1, "plot_every": 1}, "seed": 0}


def _write(folder: Path, cfg: dict, name: str = "cfg.json") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(cfg) if name.endswith(".yaml") else json.dumps(cfg))
    return path


def _one_error_line(capsys, *needles) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("natural-bm: error:")]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _real_file(tmp_path: Path, n: int = 150, cols: int = 6, sd: float = 2.6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = (3.0 + sd * rng.standard_normal((n, cols))).astype(np.float32)
    x[:, -1] = 1.5  # a constant column stays at 0
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


# ---------------------------------------------------------------------------- own real-valued files
def test_files_are_standardised_with_the_training_splits_statistics_recorded_for_scoring(tmp_path):
    path = _real_file(tmp_path)
    cfg = {**GAUSSIAN, "data": {"name": "files", "train": str(path), "kind": "standardized", "valid_fraction": 0.2,
                                "test_fraction": 0.2}}
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # standardised: no unscaled-data warning
        assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out), "--verbose", "0"]) == 0
    assert json.loads((out / "config.json").read_text())["data"]["kind"] == "standardized"
    raw_train, raw_valid, raw_test = load_files(path, valid_fraction=0.2, test_fraction=0.2, seed=0)
    saved = json.loads((out / "data_transform.json").read_text())
    np.testing.assert_allclose(saved["mean"], raw_train.astype(np.float64).mean(0), rtol=0, atol=1e-12)
    expected_scale = raw_train.astype(np.float64).std(0)
    expected_scale[-1] = 1.0  # (the constant column)
    np.testing.assert_allclose(saved["scale"], expected_scale, rtol=1e-12)
    whole = np.load(path).astype(np.float64)
    assert not np.allclose(saved["mean"][:-1], whole.mean(0)[:-1], atol=1e-3)  # the training split's, not the file's
    transform = evaluation_transform(out)
    assert isinstance(transform, DataTransform)
    data = load_splits(resolve_config(cfg))
    np.testing.assert_allclose(data.test, (raw_test - saved["mean"]) / np.asarray(saved["scale"]), atol=1e-5)
    assert abs(float(data.train[:, 0].mean())) < 1e-5 and abs(float(data.train[:, 0].std()) - 1) < 1e-5
    # scoring reads other rows as the run read its own
    as_read = load_files(path)[0]  # (every row, in the loader's order)
    np.testing.assert_array_equal(run_file_rows(path, read_config(out / "config.json"), out), transform.apply(as_read))
    assert json.loads((out / "results.json").read_text())["data"]["transform"].startswith("data_transform.json")
    assert evaluation_transform(tmp_path) is None  # a folder without one: the data as it is
    (out / "data_transform.json").write_text("{}")
    with pytest.raises(ValueError, match="data_transform.json cannot be read"):
        evaluation_transform(out)


def test_a_resumed_standardised_run_refuses_a_changed_training_file(tmp_path, capsys):
    path = _real_file(tmp_path)
    cfg = {**GAUSSIAN, "data": {"name": "files", "train": str(path), "kind": "standardized", "valid_fraction": 0.2}}
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out), "--verbose", "0"]) == 0
    (out / "results.json").unlink()
    _real_file(tmp_path, seed=1)
    assert main(["train", "--resume", str(out), "--verbose", "0"]) == 2
    _one_error_line(capsys, "data.train: its columns' means and standard deviations differ")


def test_gaussian_data_records_the_kind_used_and_unscaled_data_warns(tmp_path):
    path = _real_file(tmp_path)
    cfg = {**GAUSSIAN, "data": {"name": "files", "train": str(path), "valid_fraction": 0.2}}
    assert resolve_config(cfg)["data"]["kind"] == "real"
    assert resolve_config({**cfg, "data": {**cfg["data"], "kind": "probability"}})["data"]["kind"] == "real"
    with pytest.warns(RuntimeWarning) as seen:
        assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r"), "--verbose", "0"]) == 0
    unscaled = [w for w in seen if "standard deviation" in str(w.message)]
    assert len(unscaled) == 1 and "\n" not in str(unscaled[0].message)
    text = str(unscaled[0].message)
    assert "data: {kind: standardized}" in text and "learn_sigma: true" in text
    assert re.search(r"standard deviation is 2\.\d+ times the Gaussian visible units' fixed sigma", text)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"]["kind"] == "real"
    # a learned sigma, or data near sigma, is no cause for a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learned = {**cfg, "model": {**cfg["model"], "units": [{"type": "gaussian", "learn_sigma": True}, "bernoulli"]}}
        assert main(["train", str(_write(tmp_path, learned)), "--out", str(tmp_path / "r2"), "--verbose", "0"]) == 0
        _real_file(tmp_path, sd=1.2)
        assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r3"), "--verbose", "0"]) == 0


def test_the_kinds_that_do_not_fit_the_units_are_refused_with_the_fix(tmp_path, capsys):
    path = _real_file(tmp_path)
    with pytest.raises(ConfigError, match=r"data.kind 'real' .* needs model: \{units: \[gaussian, bernoulli\]\}"):
        resolve_config({**BINARY, "data": {**BINARY["data"], "kind": "real"}})
    with pytest.raises(ConfigError, match="is for data.name 'digits' or 'files', not 'mnist'"):
        resolve_config({**GAUSSIAN, "data": {"name": "mnist", "kind": "standardized"}})
    cfg = {**BINARY, "data": {"name": "files", "train": str(path)}}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, "must lie in [0, 1]", "model: {units: [gaussian, bernoulli]}")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------- threads
def test_threads_is_a_config_key_applied_recorded_and_put_back(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    wanted = 2 if before != 2 else 1
    seen = []
    set_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), set_threads(n)))
    assert main(["train", str(_write(tmp_path, BINARY)), "--out", str(tmp_path / "r"), "--verbose", "0",
                 "--set", f"threads={wanted}"]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["threads"] == wanted
    assert seen[0] == wanted and torch.get_num_threads() == before
    seen.clear()
    run_train(resolve_config(BINARY), tmp_path / "r2", verbose=0)  # null: torch's own, recorded
    assert seen == [before] and json.loads((tmp_path / "r2" / "config.json").read_text())["threads"] == before
    with pytest.raises(ConfigError, match="threads must be an integer >= 1, got 0"):
        resolve_config({**BINARY, "threads": 0})
    # a resume may run on other threads
    (tmp_path / "r" / "results.json").unlink()
    assert main(["train", "--resume", str(tmp_path / "r"), "--verbose", "0", "--set", "threads=1"]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["threads"] == 1


# ---------------------------------------------------------------------------- custom callbacks
USER_MODULE = """
from natural_bm.callbacks import Callback


class WeightNorm(Callback):
    produces_logs = True

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def on_epoch_end(self, epoch, logs=None):
        logs["weight_norm"] = self.scale * float(self.model.W.norm())


class NotACallback:
    pass
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = "user_callbacks_for_test"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_a_users_callback_class_loads_from_its_import_path(tmp_path, user_module):
    cfg = {**BINARY, "callbacks": [{"name": f"{user_module}:WeightNorm", "args": {"scale": 2.0}}]}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r"), "--verbose", "0"]) == 0
    log = (tmp_path / "r" / "log.csv").read_text().splitlines()
    column = log[0].split(",").index("weight_norm")
    model = load_model(tmp_path / "r" / "model.pt")
    assert float(log[-1].split(",")[column]) == pytest.approx(2.0 * float(model.W.norm()), rel=1e-6)


@pytest.mark.parametrize("name,message", [
    ("WeightNorn", "neither a natural_bm callback (valid names: ['EarlyStopping', 'ReduceLROnPlateau'"),
    ("EarlyStoping", "Did you mean 'EarlyStopping'?"),
    ("no_such_module_xyz:Thing", "cannot import the module 'no_such_module_xyz'"),
    ("{mod}:Missing", "has no 'Missing'"),
    ("{mod}:NotACallback", "must subclass natural_bm.callbacks.Callback"),
])
def test_unknown_callback_names_say_what_a_name_may_be(name, message, user_module):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        resolve_config({**BINARY, "callbacks": [{"name": name.format(mod=user_module)}]})
    assert "\n" not in str(info.value)
    if name == "WeightNorn":
        assert "nor an importable module:Class (e.g. mypkg.callbacks:WeightNorm)" in str(info.value)
    assert callback_class("EarlyStopping").__name__ == "EarlyStopping"


# ---------------------------------------------------------------------------- monitored keys
@pytest.mark.parametrize("change,message", [
    ({"callbacks": [{"name": "EarlyStopping", "args": {"monitor": "val_loss"}}], "data": {"name": "files",
      "train": "{x}"}}, "callbacks[0] (EarlyStopping) monitors 'val_loss', which needs validation rows, and this run "
     "has none: pass data.valid (a file) or data.valid_fraction > 0"),
    ({"callbacks": [{"name": "EarlyStopping"}], "data": {"name": "files", "train": "{x}"}},
     "monitors 'val_loss', which needs validation rows"),  # (EarlyStopping's default monitor)
    ({"callbacks": [{"name": "ReduceLROnPlateau", "args": {"monitor": "val_pll"}}]},
     "the pseudo-likelihood flips binary units and these visible units are real-valued"),
    ({"callbacks": [{"name": "EarlyStopping", "args": {"monitor": "val_los"}}]},
     "monitors 'val_los', which this run never logs; it logs ["),
    ({"callbacks": [{"name": "EarlyStopping", "args": {"monitor": "val_ll_exact"}}], "ais": {"exact": False}},
     "this run does not enumerate log Z (ais.exact is false)"),
    ({"training": {"best_checkpoint": "val_pll"}}, "training.best_checkpoint monitors 'val_pll'"),
])
def test_a_monitored_key_the_run_never_logs_is_refused_before_training(change, message, tmp_path, capsys):
    path = _real_file(tmp_path)
    cfg = json.loads(json.dumps({**GAUSSIAN, "data": {"name": "files", "train": str(path), "valid_fraction": 0.2}}))
    for section, value in change.items():
        if section == "data":
            value = {**value, "train": str(path)}
        cfg[section] = value if section in ("callbacks", "data") else {**cfg[section], **value}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, message)
    assert not (tmp_path / "r").exists()


def _best_epoch(run: Path):
    state = sorted((run / "checkpoints").glob("state_epoch*.pt"))[-1]
    return read_training_state(state)["callbacks"]["RunCheckpoint"]["best_epoch"]


def test_the_best_checkpoint_key_is_one_the_run_logs_and_is_recorded(tmp_path, capsys):
    path = _real_file(tmp_path, sd=1.0)
    gaussian = {**GAUSSIAN, "data": {"name": "files", "train": str(path), "valid_fraction": 0.2,
                                     "kind": "standardized"}}
    cases = [(gaussian, "val_ll_exact"),  # 2^4 states: exact at every epoch, no pseudo-likelihood of real values
             ({**gaussian, "ais": {**GAUSSIAN["ais"], "exact": False}}, "val_loss"),
             (BINARY, "val_pll"),
             ({**gaussian, "data": {**gaussian["data"], "valid_fraction": 0.0}}, None)]
    for i, (cfg, key) in enumerate(cases):
        out = tmp_path / f"r{i}"
        assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out), "--verbose", "2"]) == 0
        printed = capsys.readouterr().out
        assert json.loads((out / "config.json").read_text())["training"]["best_checkpoint"] == key
        if key is None:
            assert "natural-bm: no best checkpoint: the run logs none of ['val_pll', 'val_ll_exact', 'val_loss']" \
                   " every epoch; pass data.valid (a file) or data.valid_fraction > 0" in printed
            assert _best_epoch(out) is None
        else:
            assert f"natural-bm: the best epoch's checkpoint is kept by {key}" in printed
            assert _best_epoch(out) in (0, 1)


# ---------------------------------------------------------------------------- small runs: exact log Z
def test_a_small_model_gets_its_exact_log_z_and_no_ais(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", (rng.random((200, 64)) < 0.3).astype(np.float32))
    cfg = {"model": {"type": "rbm", "n_hidden": 16}, "data": {"name": "files", "train": str(tmp_path / "x.npy"),
           "valid_fraction": 0.2, "test_fraction": 0.2}, "training": {"epochs": 3, "batch_size": 20, "n_chains": 10},
           "samples": {"n_chains": 1, "n_samples": 1, "plot_every": 1}, "seed": 0}

    def no_ais(*args, **kwargs):
        raise AssertionError("AIS ran")

    monkeypatch.setattr(AIS, "estimate_log_error_Z", no_ais)
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r"), "--verbose", "2"]) == 0
    assert ("natural-bm: log Z by enumeration (65,536 states, at every epoch; ais.exact: auto): no AIS "
            "(ais.exact: true adds it, false replaces the enumeration).") in capsys.readouterr().out
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["logZ_method"] == "exact" and "logZ" not in results and "test_ll" not in results
    model = RBM.load(tmp_path / "r" / "model.pt")
    log_z = log_partition_exact(model)
    _, _, test = load_files(tmp_path / "x.npy", valid_fraction=0.2, test_fraction=0.2, seed=0)
    assert results["logZ_exact"] == pytest.approx(log_z, abs=1e-9)
    assert (results["test_ll_exact"], results["test_ll_exact_stderr"]) == pytest.approx(
        log_likelihood(model, test, log_z), abs=1e-9)
    log = (tmp_path / "r" / "log.csv").read_text().splitlines()
    column = log[0].split(",").index("val_ll_exact")
    assert all(math.isfinite(float(row.split(",")[column])) for row in log[1:])  # every epoch
    assert "test_ll_exact" in (tmp_path / "r" / "summary.txt").read_text()
    monkeypatch.undo()
    # reverse AIS asked for: AIS runs, beside the enumeration; a larger model: AIS
    plan = log_z_plan(resolve_config({**cfg, "ais": {"reverse": True}}), model)
    assert (plan.ais, plan.exact, plan.method) == (True, True, "ais and exact")
    big = resolve_config({**cfg, "model": {"type": "rbm", "n_hidden": 30}})
    plan = log_z_plan(big, build_model(big, 64))
    assert (plan.ais, plan.exact, plan.method) == (True, False, "ais")


def test_the_shipped_experiment_configs_keep_their_log_z_estimates():
    """ais.exact: auto leaves every shipped experiment as it ran: AIS (with the enumeration where it asked
    for it), its data kind and its best checkpoint key unchanged."""
    configs = sorted((ROOT / "experiments").glob("*/*.yaml"))
    assert len(configs) >= 10
    for path in configs:
        raw = yaml.safe_load(path.read_text())
        cfg = resolve_config(raw)
        n_visible = {"mnist": 784, "digits": 64}.get(cfg["data"]["name"])
        if cfg["model"]["type"] == "dbn" or n_visible is None:
            continue
        model = build_model(cfg, n_visible)
        plan = log_z_plan(cfg, model)
        assert plan.ais, path.name
        assert plan.exact == (raw.get("ais", {}).get("exact") is True), path.name
        assert cfg["data"]["kind"] == raw["data"].get("kind", "probability"), path.name


# ---------------------------------------------------------------------------- YAML errors
def test_yaml_and_json_errors_keep_their_line_and_column(tmp_path, capsys):
    bad = tmp_path / "config.yaml"
    bad.write_text("model:\n  type: rbm\n  n_hidden: a: b\n")  # the second ':' of line 3 is column 14
    assert main(["train", str(bad), "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, f"{bad}, line 3, column 14: mapping values are not allowed here")
    bad = tmp_path / "config.json"
    bad.write_text('{"model": {"type": "rbm",\n  "n_hidden": }}')
    assert main(["train", str(bad), "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, f"{bad}, line 2, column 15: Expecting value")
