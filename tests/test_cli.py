"""End-to-end tests of the natural-bm command on bars and stripes."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from natural_bm import RBM
from natural_bm.cli import main
from natural_bm.estimators import AIS, log_likelihood, log_partition_exact
from natural_bm.run import ConfigError, load_data, resolve_config

CONFIG = {
    "model": {"type": "rbm", "n_hidden": 6},
    "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 200},
    "training": {"algorithm": "pcd", "k": 1, "n_chains": 20, "epochs": 4, "batch_size": 20},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
    "ais": {"n_runs": 30, "n_betas": 300, "exact": True, "reverse": True, "reverse_gibbs": 50},
    "samples": {"n_chains": 3, "n_samples": 4, "plot_every": 5},
    "seed": 3,
}


def _write(tmp_path, cfg, name="cfg.json"):
    path = tmp_path / name
    if name.endswith(".yaml"):
        import yaml

        path.write_text(yaml.safe_dump(cfg))
    else:
        path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg_path = _write(tmp, CONFIG, "cfg.yaml")
    assert main(["train", str(cfg_path), "--out", str(tmp / "res"), "--verbose", "0"]) == 0
    return tmp / "res"


def test_train_writes_a_complete_results_folder(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"config.json", "log.csv", "summary.txt", "history.png", "samples_epoch0003.png", "model.pt",
            "results.json", "checkpoints"} <= names
    df = pd.read_csv(trained / "log.csv")
    assert list(df["epoch"]) == [0, 1, 2, 3]
    assert df["logZ"].isna().tolist() == [True, True, True, False]
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["training"]["epochs"] == 4 and cfg["optimizer"]["momentum"] == 0.5 and cfg["data"]["size"] == 3
    results = json.loads((trained / "results.json").read_text())
    model = RBM.load(trained / "model.pt")
    _, _, test, _ = load_data(resolve_config(CONFIG))
    assert results["test_ll"] == pytest.approx(log_likelihood(model, test, results["logZ"])[0])
    assert abs(results["logZ"] - log_partition_exact(model)) < 0.1
    assert 1.0 <= results["ais_ess"] <= 100.0
    assert abs(results["logZ_reverse"] - log_partition_exact(model)) < 0.2  # reverse AIS from the PCD chains
    assert results["test_ll_reverse"] == pytest.approx(results["test_ll"] - (results["logZ_reverse"] - results["logZ"]))
    assert results["brackets"] == (results["logZ_reverse"] >= results["logZ"])
    rev, band = results["logZ_reverse"], (results["logZ_lo"], results["logZ_hi"])
    assert results["bracket"].startswith("bracket:" if results["brackets"] else "agreement within error:"
                                         if band[0] <= rev <= band[1] else "no bracket:")
    assert Image.open(trained / "samples_epoch0003.png").size == (6 * (4 * 4 + 1), 6 * (3 * 4 + 1))  # 3x3 tiles x6
    # retention: the newest 3 checkpoints and the best by val_pll
    kept = sorted(int(p.stem[-4:]) for p in (trained / "checkpoints").glob("weights_epoch*.pt"))
    best = int(df["val_pll"].idxmax())
    assert kept == sorted({1, 2, 3, best})


def test_logz_matches_the_python_api(trained, capsys):
    assert main(["logz", str(trained / "model.pt"), "--exact", "--n-runs", "40", "--n-betas", "400", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    model = RBM.load(trained / "model.pt")
    x, valid, test, _ = load_data(resolve_config(CONFIG))
    ais = AIS(model, data=x, n_runs=40, n_betas=400, seed=0, progress=False)
    z, lo, hi = ais.estimate_log_error_Z()
    assert (out["logZ"], out["logZ_lo"], out["logZ_hi"]) == pytest.approx((z, lo, hi), abs=1e-9)
    assert out["ais_ess"] == pytest.approx(ais.ess, abs=1e-9)
    assert out["logZ_exact"] == pytest.approx(log_partition_exact(model), abs=1e-9)
    assert out["test_ll"] == pytest.approx(log_likelihood(model, test, z)[0])
    assert main(["logz", str(trained / "model.pt"), "--n-runs", "20", "--n-betas", "200", "--reverse"]) == 0
    text = capsys.readouterr().out
    assert "log Z (AIS, 20 runs x 200 betas, layers [0] annealed)" in text and "reverse AIS" in text
    assert "test log-likelihood" in text and "effective runs" in text
    # --parity 1 anneals the hidden layer, the visible one summed out: the API's estimate with parity=1
    assert main(["logz", str(trained / "model.pt"), "--n-runs", "40", "--n-betas", "400", "--parity", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    z1 = AIS(model, data=x, n_runs=40, n_betas=400, seed=0, progress=False, parity=1).estimate_log_error_Z()[0]
    assert out["annealed_layers"] == [1] and out["logZ"] == pytest.approx(z1, abs=1e-9) and out["logZ"] != z
    assert abs(out["logZ"] - log_partition_exact(model)) < 0.3


def test_ais_parity_in_a_config_reaches_forward_and_reverse_ais(trained, tmp_path):
    """ais.parity: 1 anneals the hidden layer in the run's AIS, forward and reverse: the same trained
    weights as the default run's, other log weights, the same log Z within AIS error."""
    cfg = json.loads(json.dumps(CONFIG))
    cfg["ais"]["parity"] = 1
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "odd"), "--verbose", "0"]) == 0
    odd = json.loads((tmp_path / "odd" / "results.json").read_text())
    default = json.loads((trained / "results.json").read_text())
    model = RBM.load(tmp_path / "odd" / "model.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.parameter_dict().values(),
                                                 RBM.load(trained / "model.pt").parameter_dict().values(), strict=True))
    exact = log_partition_exact(model)
    for key in ("logZ", "logZ_reverse"):
        assert odd[key] != default[key] and abs(odd[key] - exact) < 0.3
    assert json.loads((tmp_path / "odd" / "config.json").read_text())["ais"]["parity"] == 1


def test_resume_equals_uninterrupted(trained, tmp_path):
    crashed = tmp_path / "crashed"
    shutil.copytree(trained, crashed)
    # the state on disk after a crash during epoch 2: checkpoints 0-1, a log row 2 written before the crash
    for p in ["model.pt", "results.json", "checkpoints/weights_epoch0002.pt", "checkpoints/state_epoch0002.pt",
              "checkpoints/weights_epoch0003.pt", "checkpoints/state_epoch0003.pt"]:
        (crashed / p).unlink()
    df = pd.read_csv(crashed / "log.csv")
    df[df["epoch"] <= 2].to_csv(crashed / "log.csv", index=False)
    assert main(["train", "--resume", str(crashed), "--verbose", "0"]) == 0
    a, b = RBM.load(trained / "model.pt"), RBM.load(crashed / "model.pt")
    for name in a.param_names:
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert list(pd.read_csv(crashed / "log.csv")["epoch"]) == [0, 1, 2, 3]


def test_init_from_continues_a_trained_model(trained, tmp_path, capsys, monkeypatch):
    """model.init_from: the run starts at the file's parameters (the visible biases are not reset to the
    data's means), with this config's optimiser; at lr 1e-9 one epoch leaves them where they were."""
    cfg = json.loads(json.dumps(CONFIG))
    cfg["model"]["init_from"] = str(trained / "model.pt")
    cfg["training"]["epochs"] = 1
    cfg["optimizer"] = {"name": "sgd", "lr": 1e-9}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "warm"), "--verbose", "0"]) == 0
    start, end = RBM.load(trained / "model.pt"), RBM.load(tmp_path / "warm" / "model.pt")
    for name in start.param_names:
        torch.testing.assert_close(getattr(end, name), getattr(start, name), rtol=0, atol=1e-6)
    assert not torch.allclose(RBM(9, 6, seed=3).W, start.W, atol=1e-3)
    monkeypatch.chdir(tmp_path)
    errors = {
        "missing.json": ({"init_from": "nowhere/model.pt"}, {}, "model.init_from: no model file at nowhere/model.pt"),
        "shape.json": ({"init_from": str(trained / "model.pt"), "n_hidden": 5}, {},
                       "model.init_from: " + str(trained / "model.pt") + " holds a RBM with"),
        "pre.json": ({"init_from": str(trained / "model.pt"), "type": "dbm"}, {"pretrain": {"epochs": 1}},
                     "remove one of model.init_from and pretrain.epochs"),
    }
    for name, (model_keys, extra, message) in errors.items():
        bad = _write(tmp_path, {**CONFIG, "model": {**CONFIG["model"], **model_keys}, **extra}, name)
        assert main(["train", str(bad), "--out", str(tmp_path / name[:-5])]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / name[:-5]).exists()  # nothing written


def test_sample_and_summary(trained, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(trained / "model.pt"), "--out", str(out), "--n-chains", "2", "--n-samples", "3",
                 "--every", "5"]) == 0
    assert Image.open(out).size == (6 * (3 * 4 + 1), 6 * (2 * 4 + 1))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    capsys.readouterr()
    assert main(["summary", str(trained)]) == 0
    assert capsys.readouterr().out == (trained / "summary.txt").read_text()


@pytest.mark.parametrize("argv,message", [
    (["train", "missing.json"], "config file not found"),
    (["logz", "missing.pt"], "model file not found"),
    (["sample", "missing.pt", "--out", "x.png"], "model file not found"),
    (["summary", "missing_dir"], "neither summary.txt nor log.csv"),
    (["train", "--resume", "missing_dir"], "config.json not found"),
    (["train"], "train needs a config file"),
])
def test_errors_are_one_line_with_exit_code_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("natural-bm: error:") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_config_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _write(tmp_path, {**CONFIG, "trainnig": {}}, "bad.json")
    assert main(["train", str(bad)]) == 2
    assert "unknown config key 'trainnig'; valid keys: ['ais', 'callbacks', 'data', 'device'" in capsys.readouterr().err
    bad2 = _write(tmp_path, {**CONFIG, "optimizer": {"name": "sgd", "learning_rate": 1}}, "bad2.json")
    assert main(["train", str(bad2)]) == 2
    assert "unknown key optimizer.learning_rate; valid keys:" in capsys.readouterr().err
    if not torch.cuda.is_available():
        cuda = _write(tmp_path, {**CONFIG, "device": "cuda"}, "cuda.json")
        assert main(["train", str(cuda)]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    bad3 = _write(tmp_path, {**CONFIG, "training": {**CONFIG["training"], "jit_compile": "yes"}}, "bad3.json")
    assert main(["train", str(bad3)]) == 2
    assert "training.jit_compile must be true, false or 'auto'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "bad2.json", "bad3.json"] + (
        ["cuda.json"] if not torch.cuda.is_available() else [])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    good = _write(tmp_path, CONFIG, "good.json")
    assert main(["train", str(good), "--out", str(tmp_path / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_resumable(monkeypatch, capsys, tmp_path):
    from natural_bm import run as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "train", interrupted)
    assert main(["train", str(_write(tmp_path, CONFIG))]) == 130
    assert "--resume" in capsys.readouterr().err


def test_help_explains_every_flag(capsys):
    for cmd in ("train", "logz", "sample", "summary", "export", "inspect"):
        with pytest.raises(SystemExit) as info:
            main([cmd, "--help"])
        assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--resume", "--exact", "--n-runs", "--n-betas", "--reverse", "--device", "--json", "--n-chains",
                 "--n-samples", "--every", "--threads", "--raise", "--raise-rows", "--sampler", "--format",
                 "--dataset"):
        assert flag in text
    for retired in ("--betas", "--runs ", "--chains", "--snapshots"):  # hidden: refused with their new names
        assert retired not in text


def test_config_schedule_and_callbacks(tmp_path, capsys):
    cfg = {**CONFIG, "training": {**CONFIG["training"], "epochs": 6},
           "ais": {"n_runs": 10, "n_betas": 100, "exact": False},
           "schedule": {"lr": [[0, 0.05], [2, 0.01]], "momentum": [[0, 0.5], [3, 0.9]]},
           "callbacks": [{"name": "OptimizerSpy"},
                         {"name": "EarlyStopping", "args": {"monitor": "val_loss", "patience": 0, "baseline": -1.0}}]}
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "r"), "--verbose", "0"]) == 0
    df = pd.read_csv(tmp_path / "r" / "log.csv")
    # val_loss (a cross-entropy) is never below the baseline -1: EarlyStopping stops after epoch 0
    assert list(df["epoch"]) == [0]
    cfg["callbacks"] = [{"name": "OptimizerSpy"}]
    assert main(["train", str(_write(tmp_path, cfg, "c2.json")), "--out", str(tmp_path / "r2"), "--verbose",
                 "0"]) == 0
    df = pd.read_csv(tmp_path / "r2" / "log.csv")
    assert df["lr"].tolist() == [0.05, 0.05, 0.01, 0.01, 0.01, 0.01]
    assert df["momentum"].tolist() == [0.5, 0.5, 0.5, 0.9, 0.9, 0.9]
    capsys.readouterr()
    bad = {**CONFIG, "callbacks": [{"name": "Sneaky"}]}
    assert main(["train", str(_write(tmp_path, bad, "bad.json"))]) == 2
    assert "valid names: ['EarlyStopping'" in capsys.readouterr().err
    bad = {**CONFIG, "schedule": {"lr": [[1, 0.1]]}}
    assert main(["train", str(_write(tmp_path, bad, "bad2.json"))]) == 2
    assert "schedule.lr must start at epoch 0" in capsys.readouterr().err


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_config_jit_compile_reaches_the_model(value):
    from natural_bm.run import build_model

    cfg = resolve_config({**CONFIG, "training": {**CONFIG["training"], "jit_compile": value}})
    model = build_model(cfg, 9)
    assert model.trainer.jit_compile == value
    assert model.trainer.use_jit_compile() is (value is True or (value == "auto" and model.device.type == "cuda"))


@pytest.mark.parametrize("value", [True, False])
def test_config_cuda_graph_reaches_the_model_and_its_file(value, tmp_path):
    from natural_bm import load_model
    from natural_bm.run import build_model

    cfg = resolve_config({**CONFIG, "training": {**CONFIG["training"], "cuda_graph": value}})
    model = build_model(cfg, 9)
    assert model.trainer.cuda_graph is value
    assert load_model(model.save(tmp_path / "m.pt")).trainer.cuda_graph is value
    with pytest.raises(ConfigError, match="training.cuda_graph must be true or false"):
        resolve_config({**CONFIG, "training": {**CONFIG["training"], "cuda_graph": "auto"}})


def test_dbm_config_runs_end_to_end(tmp_path, capsys):
    """model.type: dbm through natural-bm train: samples, AIS against the exact log Z, results."""
    from natural_bm import DBM

    cfg = {**CONFIG, "model": {"type": "dbm", "layer_sizes": [9, 4, 3]},
           "training": {"k": 1, "n_chains": 20, "epochs": 3, "batch_size": 20, "mf_steps": 5},
           "ais": {"n_runs": 30, "n_betas": 400, "exact": True, "importance_samples": 50, "reverse": True}}
    out = tmp_path / "dbm"
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(out), "--verbose", "0"]) == 0
    results = json.loads((out / "results.json").read_text())
    model = DBM.load(out / "model.pt")
    exact = log_partition_exact(model)
    assert results["status"] == "complete" and results["logZ_exact"] == pytest.approx(exact, abs=1e-9)
    assert abs(results["logZ"] - exact) < 0.1
    _, _, test, _ = load_data(resolve_config(cfg))
    assert results["test_ll"] == pytest.approx(log_likelihood(model, test, results["logZ"])[0])
    iw = log_likelihood(model, test, results["logZ"], importance_samples=50, seed=cfg["seed"])
    assert (results["test_ll_importance"], results["test_ll_importance_stderr"]) == pytest.approx(iw, abs=1e-9)
    assert results["test_ll_importance_reverse"] == pytest.approx(
        iw[0] - (results["logZ_reverse"] - results["logZ"]), abs=1e-9)
    assert Image.open(out / "samples_epoch0002.png").size == (6 * (4 * 4 + 1), 6 * (3 * 4 + 1))
    # logz --importance-samples: the API's importance-sampled log-likelihood, near the exact one
    capsys.readouterr()
    assert main(["logz", str(out / "model.pt"), "--exact", "--n-runs", "30", "--n-betas", "400", "--reverse",
                 "--importance-samples", "300", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    ll, se = log_likelihood(model, test, r["logZ"], importance_samples=300, seed=0)
    assert r["test_ll_importance"] == pytest.approx(ll, abs=1e-9)
    assert r["test_ll_importance_stderr"] == pytest.approx(se)
    assert r["test_ll_importance_reverse"] == pytest.approx(ll - (r["logZ_reverse"] - r["logZ"]), abs=1e-9)
    exact_ll = float((-model.free_energy(torch.as_tensor(test, dtype=model.dtype))).mean()) - r["logZ"]
    assert abs(r["test_ll_importance"] - exact_ll) < 0.01
    # logz --posterior-ais: per-image AIS on the first rows of the test set, beside importance sampling
    assert main(["logz", str(out / "model.pt"), "--n-runs", "30", "--n-betas", "400", "--importance-samples", "300",
                 "--posterior-ais", "5", "200", "--posterior-rows", "7", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    rows = torch.as_tensor(test[:7], dtype=model.dtype)
    ll, se = log_likelihood(model, rows, r["logZ"], ais_chains=5, ais_betas=200, seed=0)
    assert (r["test_ll_posterior_ais"], r["test_ll_posterior_ais_stderr"]) == pytest.approx((ll, se), abs=1e-9)
    assert r["posterior_rows"] == 7 and r["test_ll_importance_same_rows"] == pytest.approx(
        log_likelihood(model, rows, r["logZ"], importance_samples=300, seed=0)[0], abs=1e-9)
    exact_rows = float((-model.free_energy(rows)).mean()) - r["logZ"]
    assert abs(r["test_ll_posterior_ais"] - exact_rows) < 0.01
    # every test row: the importance-sampled figure beside it is the whole test set's
    assert main(["logz", str(out / "model.pt"), "--n-runs", "30", "--n-betas", "400", "--importance-samples", "300",
                 "--posterior-ais", "2", "20", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["posterior_rows"] == len(test) and r["test_ll_importance_same_rows"] == pytest.approx(
        log_likelihood(model, test, r["logZ"], importance_samples=300, seed=0)[0], abs=1e-9)


def test_version_help_and_image_formats(trained, tmp_path, capsys):
    from natural_bm import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"natural-bm {__version__}"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "optimizer: name=\"sgd\", lr=0.01" in text and "schedule: lr=null, momentum=null, k=null" in text
    jpg = tmp_path / "grid.jpg"
    assert main(["sample", str(trained / "model.pt"), "--out", str(jpg), "--n-chains", "2", "--n-samples", "2",
                 "--every", "2", "--device", "cpu"]) == 0
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff" and Image.open(jpg).format == "JPEG"
    capsys.readouterr()
    assert main(["sample", str(trained / "model.pt"), "--out", str(tmp_path / "grid.gif")]) == 2
    err = capsys.readouterr().err
    assert "use a .png, .jpg or .jpeg file name" in err and err.count("\n") == 1
    assert not (tmp_path / "grid.gif").exists()


def test_bars_and_stripes_has_distinct_validation_and_test_sets():
    x, valid, test, _ = load_data(resolve_config(CONFIG))
    assert len(valid) == len(test) == 40 and not np.array_equal(valid, test)


def test_every_experiment_config_passes_the_schema():
    """Each YAML config shipped under experiments/ resolves (every key known, every value valid), so a
    long run cannot die at its start, or at its end, on a typo."""
    import yaml

    from natural_bm import run as runner

    paths = sorted((Path(__file__).resolve().parents[1] / "experiments").rglob("*.yaml"))
    assert len(paths) >= 10
    for path in paths:
        cfg = runner.resolve_config(yaml.safe_load(path.read_text()))
        assert cfg["training"]["epochs"] >= 1, path
    recipe = yaml.safe_load((Path(__file__).resolve().parents[1] / "experiments" / "dbm_mnist_sh2009"
                             / "dbm500_1000_recipe.yaml").read_text())
    lr_end = 0.001 / (1 + recipe["optimizer"]["decay"]) ** (200 * 50000 // 100)
    assert lr_end == pytest.approx(1e-5, rel=1e-3)  # its comment's schedule: 1e-3 to 1e-5 over 200 epochs
