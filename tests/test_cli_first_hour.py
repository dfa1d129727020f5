"""The command line as a new user meets it (issue 36 parts 2, 3 and 6): shipped models by name, portable
files, results folders, the conservative figures of --reverse, --threads, data files read as the run read
them, retired flags, RAISE and parallel tempering."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import natural_bm.pretrained as pretrained
from natural_bm import RBM, load_model
from natural_bm.cli import main
from natural_bm.estimators import AIS, log_likelihood, log_partition_exact, raise_log_likelihood
from natural_bm.models.portable import read_portable_header
from natural_bm.rng import RandomSource
from natural_bm.run import load_data, resolve_config
from natural_bm.sampling import ParallelTempering
from natural_bm.viz.parameters import parameter_stats

CONFIG = {
    "model": {"type": "rbm", "n_hidden": 5},
    "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 200},
    "training": {"algorithm": "pcd", "k": 1, "n_chains": 20, "epochs": 2, "batch_size": 20},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
    "ais": {"n_runs": 10, "n_betas": 50, "exact": True, "reverse": False},
    "samples": {"n_chains": 2, "n_samples": 2, "plot_every": 2},
    "seed": 5,
}


def _write(path, cfg):
    path.write_text(yaml.safe_dump(cfg) if path.suffix == ".yaml" else json.dumps(cfg))
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("natural-bm: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first_hour")
    assert main(["train", str(_write(tmp / "cfg.json", CONFIG)), "--out", str(tmp / "res"), "--verbose", "0"]) == 0
    return tmp / "res"


def _json_out(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------------------- results folders
def test_logz_takes_a_results_folder_and_its_data(run_folder, capsys):
    """logz RUN_FOLDER: the folder's model.pt, scored on the run's own splits (its config.json)."""
    assert main(["logz", str(run_folder), "--n-runs", "20", "--n-betas", "100", "--exact", "--json"]) == 0
    out = _json_out(capsys)
    model = RBM.load(run_folder / "model.pt")
    x, valid, test, _ = load_data(resolve_config(CONFIG))
    z = AIS(model, data=x, n_runs=20, n_betas=100, seed=0, progress=False).estimate_log_error_Z()[0]
    assert out["model"] == str(run_folder / "model.pt") and out["logZ"] == pytest.approx(z, abs=1e-9)
    assert out["test_ll"] == pytest.approx(log_likelihood(model, test, z)[0], abs=1e-9)
    assert out["valid_ll"] == pytest.approx(log_likelihood(model, valid, z)[0], abs=1e-9)
    assert out["logZ_exact"] == pytest.approx(log_partition_exact(model), abs=1e-9)


def test_a_folder_without_a_model_says_what_to_do(run_folder, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((run_folder / "config.json").read_text())
    assert main(["logz", str(unfinished)]) == 2
    assert f"holds no model.pt: its run has not finished (natural-bm train --resume {unfinished}" in \
        _one_error_line(capsys)
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "g.png")]) == 2
    assert "give a model file, a results folder of natural-bm train or a shipped model's name" in \
        _one_error_line(capsys)
    assert main(["logz", "rbm500-cd25-aneal"]) == 2  # a mistyped name: the nearest one
    err = _one_error_line(capsys)
    assert "model file not found: rbm500-cd25-aneal; nor is it a shipped model's name" in err
    assert "Did you mean 'rbm500-cd25-anneal'?" in err


# ---------------------------------------------------------------------------- the conservative figures
def test_logz_reverse_prints_the_conservative_figures_beside_the_forward_ones(run_folder, capsys):
    argv = ["logz", str(run_folder), "--n-runs", "10", "--n-betas", "60", "--reverse"]
    assert main(argv + ["--json"]) == 0
    out = _json_out(capsys)
    assert main(argv) == 0
    text = capsys.readouterr().out.splitlines()
    for split in ("train", "valid", "test"):
        conservative = out[f"{split}_ll"] - (out["logZ_reverse"] - out["logZ"])
        assert out[f"{split}_ll_reverse"] == pytest.approx(conservative, abs=1e-12)
        line = next(t for t in text if t.startswith(f"{split} log-likelihood: "))
        assert line == (f"{split} log-likelihood: {out[f'{split}_ll']:.4f} ± {out[f'{split}_ll_stderr']:.4f} nats "
                        f"(reverse log Z: {conservative:.4f})")


# ---------------------------------------------------------------------------- threads
def test_logz_and_sample_run_on_the_threads_asked_for(run_folder, tmp_path, capsys, monkeypatch):
    before = torch.get_num_threads()
    wanted = 2 if before != 2 else 3
    assert main(["logz", str(run_folder), "--n-runs", "4", "--n-betas", "10", "--threads", str(wanted),
                 "--json"]) == 0
    assert _json_out(capsys)["threads"] == wanted and torch.get_num_threads() == before  # put back after
    assert main(["logz", str(run_folder), "--n-runs", "4", "--n-betas", "10", "--threads", str(wanted)]) == 0
    assert f"threads: {wanted}" in capsys.readouterr().out.splitlines()
    seen = []
    set_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), set_threads(n)))
    assert main(["sample", str(run_folder), "--out", str(tmp_path / "g.png"), "--n-chains", "1", "--n-samples", "1",
                 "--every", "1", "--threads", str(wanted)]) == 0
    assert seen == [wanted, before]
    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as info:
            main(["logz", str(run_folder), "--threads", bad])
        assert info.value.code == 2
    assert "--threads takes a whole number >= 1" in capsys.readouterr().err


def test_train_threads_is_the_config_key_and_recorded(tmp_path):
    cfg = {**CONFIG, "training": {**CONFIG["training"], "epochs": 1}, "ais": {"n_runs": 4, "n_betas": 10}}
    assert main(["train", str(_write(tmp_path / "c.json", cfg)), "--out", str(tmp_path / "r"), "--verbose", "0",
                 "--threads", "1"]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["threads"] == 1


# ---------------------------------------------------------------------------- data files
def test_logz_data_file_is_read_as_the_run_read_its_files(tmp_path, capsys):
    """A run trained on the array 'x' of an .npz holding two arrays: logz --data of another such file
    scores its 'x' (the run's data.key), where a plain read needs the key and refuses."""
    rng = np.random.default_rng(0)
    rows = (rng.random((120, 9)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=rows, labels=np.arange(120))
    other = (rng.random((15, 9)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "other.npz", x=other, labels=np.arange(15))
    cfg = {**CONFIG, "data": {"name": "files", "train": str(tmp_path / "train.npz"), "key": "x",
                              "valid_fraction": 0.2}, "training": {**CONFIG["training"], "epochs": 1}}
    assert main(["train", str(_write(tmp_path / "c.json", cfg)), "--out", str(tmp_path / "r"), "--verbose",
                 "0"]) == 0
    capsys.readouterr()
    assert main(["logz", str(tmp_path / "r"), "--n-runs", "4", "--n-betas", "10", "--data",
                 str(tmp_path / "other.npz"), "--json"]) == 0
    out = _json_out(capsys)
    model = RBM.load(tmp_path / "r" / "model.pt")
    assert out["test_ll"] == pytest.approx(log_likelihood(model, other, out["logZ"])[0], abs=1e-9)
    assert "train_ll" not in out and "read as the run in" in out["data"]


def test_yaml_errors_keep_the_line_and_column(tmp_path, capsys):
    bad = tmp_path / "config.yaml"
    bad.write_text("model:\n  type: rbm\n  n_hidden: a: b\n")  # the second ':' of line 3 is column 14
    assert main(["train", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert f"{bad}, line 3, column 14: mapping values are not allowed here" in _one_error_line(capsys)


# ---------------------------------------------------------------------------- one meaning per name
@pytest.mark.parametrize("argv,old,new", [
    (["logz", "M", "--betas", "10"], "--betas", "--n-betas"),
    (["logz", "M", "--betas=10"], "--betas", "--n-betas"),
    (["logz", "M", "--runs", "10"], "--runs", "--n-runs"),
    (["sample", "M", "--out", "g.png", "--chains", "2"], "--chains", "--n-chains"),
    (["sample", "M", "--out", "g.png", "--snapshots", "2"], "--snapshots", "--n-samples"),
])
def test_retired_flags_name_their_new_spelling(argv, old, new, capsys, tmp_path, monkeypatch):
    """Counts are spelled as the config spells them; the old flags are refused, naming the new ones."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert _one_error_line(capsys).startswith(f"natural-bm: error: {old} is now {new} (")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- RAISE
def test_logz_raise_reports_raise_on_the_test_rows(run_folder, capsys):
    argv = ["logz", str(run_folder), "--n-runs", "4", "--n-betas", "10", "--raise", "4", "60", "--raise-rows", "9"]
    assert main(argv + ["--json"]) == 0
    out = _json_out(capsys)
    model = RBM.load(run_folder / "model.pt")
    x, _, test, _ = load_data(resolve_config(CONFIG))
    est = raise_log_likelihood(model, test[:9], n_chains=4, n_betas=60, base="data", data=x, seed=0)
    assert (out["test_ll_raise"], out["test_ll_raise_stderr"]) == (est.mean, est.stderr)
    assert (out["raise_chains"], out["raise_betas"], out["raise_rows"]) == (4, 60, 9)
    assert main(argv) == 0
    assert any(t.startswith(f"test log-likelihood, RAISE (4 chains x 60 betas, first 9 rows): {est.mean:.4f} ± ")
               for t in capsys.readouterr().out.splitlines())
    assert main(["logz", str(run_folder), "--raise", "4"]) == 2
    assert "--raise takes no numbers or two (N_CHAINS N_BETAS), got 1" in _one_error_line(capsys)
    assert main(["logz", str(run_folder), "--data", "none", "--raise"]) == 2
    assert "--raise anneals from test rows, and there are none" in _one_error_line(capsys)


# ---------------------------------------------------------------------------- parallel tempering
def test_sample_with_parallel_tempering_draws_its_beta_one_chains(run_folder, tmp_path, capsys):
    """--sampler pt: the grid holds the visible means of the beta = 1 chains of parallel tempering started
    from noise, on a ladder tuned first, a snapshot every --every steps (read back from the PNG, 8-bit)."""
    out = tmp_path / "pt.png"
    assert main(["sample", str(run_folder), "--out", str(out), "--sampler", "pt", "--n-chains", "3", "--n-samples",
                 "2", "--every", "150", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    model = RBM.load(run_folder / "model.pt")
    gen = RandomSource(4, model.device)
    pt = ParallelTempering(model)
    with torch.no_grad():
        pt.init_chains(model.units[0].sample(torch.zeros(3, 9, dtype=model.dtype), 1.0, gen), gen)
        pt.tune(generator=gen)
        means = [model.prob_layer(0, pt.run(150, gen)) for _ in range(2)]
    rates = pt.swap_rates()
    assert printed.startswith(f"parallel tempering: {pt.n_temperatures} temperatures from beta 1 to 0.1 (tuned in "
                              f"{pt.ladder_changes} changes), swap rates {float(rates.min()):.2f} to "
                              f"{float(rates.max()):.2f} while sampling\n")
    pixels = np.asarray(Image.open(out).convert("L"), dtype=np.float64) / 255.0
    scale = 6  # 3x3 tiles enlarged to at least 16 pixels a side, as the Gibbs grids
    assert pixels.shape == (scale * (3 * 4 + 1), scale * (2 * 4 + 1))
    for chain in range(3):
        for col in range(2):
            top, left = scale * (1 + 4 * chain), scale * (1 + 4 * col)
            tile = pixels[top : top + 3 * scale : scale, left : left + 3 * scale : scale].reshape(9)
            np.testing.assert_allclose(tile, means[col][chain].numpy(), atol=1 / 255 + 1e-9)


# ---------------------------------------------------------------------------- portable files
def test_export_and_read_back_in_every_command(run_folder, tmp_path, capsys):
    model = RBM.load(run_folder / "model.pt")
    npz = tmp_path / "m.npz"
    assert main(["export", str(run_folder), "--format", "npz", "--out", str(npz)]) == 0
    header = read_portable_header(npz)
    assert header["dataset"]["name"] == "bars_and_stripes" and header["dataset"]["size"] == 3  # the run's data
    with np.load(npz) as f:  # numpy alone: the free energy of a few rows
        W, b, c = f["W"].astype(np.float64), f["vbias"].astype(np.float64), f["hbias"].astype(np.float64)
    v = (np.random.default_rng(1).random((5, 9)) < 0.5).astype(np.float64)
    np.testing.assert_allclose(-v @ b - np.logaddexp(0, c + v @ W).sum(1),
                               model.free_energy(torch.as_tensor(v, dtype=model.dtype)).double().numpy(), atol=1e-5)
    # the default name: MODEL with the format's suffix; a run folder's model.pt gives model.safetensors there
    pytest.importorskip("safetensors")
    copy = tmp_path / "copy.pt"
    copy.write_bytes((run_folder / "model.pt").read_bytes())
    assert main(["export", str(copy), "--format", "safetensors", "--dataset", "bars 3x3"]) == 0
    st = tmp_path / "copy.safetensors"
    assert read_portable_header(st)["dataset"] == "bars 3x3" and f"wrote {st}" in capsys.readouterr().out
    for path in (npz, st):
        capsys.readouterr()
        back = load_model(path)
        assert all(torch.equal(a, b) for a, b in zip(back.parameter_dict().values(),
                                                     model.parameter_dict().values(), strict=True))
        assert main(["logz", str(path), "--n-runs", "4", "--n-betas", "10", "--data", "none", "--exact",
                     "--json"]) == 0
        assert _json_out(capsys)["logZ_exact"] == pytest.approx(log_partition_exact(model), abs=1e-9)
        assert main(["inspect", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(parameter_stats(model)))
        assert main(["sample", str(path), "--out", str(tmp_path / "g.png"), "--n-chains", "1", "--n-samples", "1",
                     "--every", "1"]) == 0
    capsys.readouterr()
    assert main(["export", str(copy)]) == 2
    assert "export needs --format npz or safetensors" in _one_error_line(capsys)
    assert main(["export", str(npz), "--format", "npz"]) == 2
    assert "is the model file itself" in _one_error_line(capsys)
    assert main(["export", str(copy), "--format", "npz", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "has the suffix .safetensors but format='npz'" in _one_error_line(capsys)


# ---------------------------------------------------------------------------- shipped models by name
def test_shipped_models_by_name(tmp_path, capsys, monkeypatch):
    """The shipped RBM and DBM by name in logz, sample, inspect, summary and export."""
    monkeypatch.chdir(tmp_path)
    rbm = pretrained.load("rbm500-cd25-anneal")
    assert main(["logz", "rbm500-cd25-anneal", "--data", "none", "--n-runs", "2", "--n-betas", "10", "--json"]) == 0
    out = _json_out(capsys)
    z = AIS(rbm, n_runs=2, n_betas=10, seed=0, progress=False).estimate_log_error_Z()[0]
    assert out["pretrained"] == "rbm500-cd25-anneal" and out["model"] == str(pretrained.path("rbm500-cd25-anneal"))
    assert out["logZ"] == pytest.approx(z, abs=1e-9)
    assert main(["logz", "rbm500-cd25-anneal", "--data", "none", "--n-runs", "2", "--n-betas", "10"]) == 0
    shipped = pretrained.describe_results(rbm.pretrained.results)
    assert capsys.readouterr().out.splitlines()[-1] == f"as shipped (rbm500-cd25-anneal): {shipped}"
    assert main(["sample", "dbm500-1000", "--out", "g.png", "--n-chains", "2", "--n-samples", "2", "--every",
                 "1"]) == 0
    assert Image.open(tmp_path / "g.png").size == (2 * 29 + 1, 2 * 29 + 1)  # 28x28 tiles, 1-pixel padding
    capsys.readouterr()
    assert main(["inspect", "rbm500-cd25-anneal", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(parameter_stats(rbm)))
    assert main(["summary", "dbm500-1000"]) == 0
    text = capsys.readouterr().out
    dbm = pretrained.load("dbm500-1000").pretrained
    assert text.splitlines() == [f"dbm500-1000: {dbm.description}", f"data set: {dbm.dataset}", f"file: {dbm.path}",
                                 f"results: {pretrained.describe_results(dbm.results)}"]
    assert main(["export", "rbm500-cd25-anneal", "--format", "npz"]) == 0
    header = read_portable_header(tmp_path / "rbm500-cd25-anneal.npz")  # in the current folder
    assert header["dataset"] == rbm.pretrained.dataset and header["class"] == "RBM"


@pytest.mark.mnist
def test_a_shipped_model_is_scored_on_its_data_set(mnist_dir, capsys, monkeypatch):
    """No --data: a shipped model's data set (MNIST binarised once, as its results were measured)."""
    from natural_bm.datasets import load_mnist

    monkeypatch.setenv("NATURAL_BM_DATA", mnist_dir)
    assert main(["logz", "rbm500-cd25-anneal", "--n-runs", "2", "--n-betas", "10", "--json"]) == 0
    out = _json_out(capsys)
    rbm = pretrained.load("rbm500-cd25-anneal")
    test = load_mnist("sampled", path=mnist_dir).test
    assert out["test_ll"] == pytest.approx(log_likelihood(rbm, test, out["logZ"])[0], abs=1e-6)
    assert out["data"].startswith("mnist (sampled); rbm500-cd25-anneal was trained on MNIST")


def test_logz_data_file_of_a_standardised_run_is_standardised_as_the_run(tmp_path, capsys):
    """logz --data FILE of a run trained on standardised files scores the file through the run's saved
    transform (data_transform.json), as the run scored its own test rows."""
    from natural_bm.run import evaluation_transform

    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", (3.0 + 2.5 * rng.standard_normal((120, 5))).astype(np.float32))
    np.save(tmp_path / "y.npy", (3.0 + 2.5 * rng.standard_normal((20, 5))).astype(np.float32))
    cfg = {**CONFIG, "model": {"type": "rbm", "n_hidden": 4, "units": ["gaussian", "bernoulli"]},
           "data": {"name": "files", "train": str(tmp_path / "x.npy"), "kind": "standardized", "valid_fraction": 0.2},
           "training": {**CONFIG["training"], "epochs": 1}}
    assert main(["train", str(_write(tmp_path / "c.json", cfg)), "--out", str(tmp_path / "r"), "--verbose", "0"]) == 0
    capsys.readouterr()
    assert main(["logz", str(tmp_path / "r"), "--n-runs", "4", "--n-betas", "10", "--data", str(tmp_path / "y.npy"),
                 "--json"]) == 0
    out = _json_out(capsys)
    model = RBM.load(tmp_path / "r" / "model.pt")
    rows = evaluation_transform(tmp_path / "r").apply(np.load(tmp_path / "y.npy"))
    assert out["test_ll"] == pytest.approx(log_likelihood(model, rows, out["logZ"])[0], abs=1e-6)


def test_warnings_of_a_command_print_as_one_line_without_source(tmp_path):
    """A warning raised while a command runs prints as ``natural-bm: warning: MESSAGE``, with no file, line
    number or source line of the library or of the console script; ``main`` puts Python's format back."""
    import subprocess
    import sys

    script = ("import warnings\n"
              "from natural_bm import cli\n"
              "cli.COMMANDS['summary'] = lambda args: warnings.warn('the chains do not mix', RuntimeWarning) or 0\n"
              "before = warnings.formatwarning\n"
              "assert cli.main(['summary', 'x']) == 0\n"
              "assert warnings.formatwarning is before\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "natural-bm: warning: the chains do not mix\n"
