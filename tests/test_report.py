"""The evaluation report (natural_bm.estimators.report) against brute force and the estimators it calls, and
``natural-bm logz``'s data, which is named, never guessed."""

import itertools
import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from conftest import random_rbm, randomize

from natural_bm import DBM
from natural_bm.cli import main
from natural_bm.estimators import AIS, log_likelihood, log_partition_exact, raise_log_likelihood
from natural_bm.estimators.report import (
    AISRuns,
    ForwardAIS,
    PosteriorAIS,
    RaiseAIS,
    ReverseAIS,
    conservative_log_likelihood,
    evaluate_model,
)


def _numpy_log_z_and_free_energy(model):
    """log Z and -F(v) of an RBM by enumerating every visible state in numpy (independent of the package)."""
    W, b, c = (t.detach().numpy().astype(np.float64) for t in (model.W, model.vbias, model.hbias))

    def neg_free_energy(v):
        return v @ b + np.logaddexp(0.0, v @ W + c).sum(1)

    states = np.array(list(itertools.product([0.0, 1.0], repeat=W.shape[0])))
    scores = neg_free_energy(states)
    return float(np.log(np.exp(scores - scores.max()).sum()) + scores.max()), neg_free_energy


@pytest.fixture(scope="module")
def rbm_and_data():
    model = random_rbm(6, 4, scale=0.8, seed=3)
    rng = np.random.default_rng(0)
    return model, (rng.random((80, 6)) < 0.4).astype(np.float64), (rng.random((30, 6)) < 0.4).astype(np.float64)


def test_every_figure_is_the_estimator_it_names(rbm_and_data):
    model, x, test = rbm_and_data
    report = evaluate_model(model, data={"train": x, "test": test}, base_data=x, ais=AISRuns(60, 400, "auto", 5),
                            exact=True, reverse=ReverseAIS(n_gibbs=30, data=x), importance_samples=4, seed=7,
                            data_name="toy")
    log_z, neg_f = _numpy_log_z_and_free_energy(model)
    assert report.logZ_exact == pytest.approx(log_z, abs=1e-10)
    ais = AIS(model, data=x, n_runs=60, n_betas=400, seed=5, progress=False)
    z, lo, hi = ais.estimate_log_error_Z()
    f = report.forward
    assert (f.logZ, f.logZ_lo, f.logZ_hi, f.ais_ess) == (z, lo, hi, ais.ess) and abs(z - log_z) < 0.1
    assert (f.n_runs, f.n_betas, f.annealed_layers) == (60, 400, [0])
    assert report.logZ_reverse == ais.run_reverse(n_gibbs=30, data=x) and report.ais_ess_reverse == ais.ess_reverse
    d = report.to_dict()
    for name, rows in (("train", x), ("test", test)):
        assert (d[f"{name}_ll"], d[f"{name}_ll_stderr"]) == log_likelihood(model, rows, z)
        assert d[f"{name}_ll_exact"] == pytest.approx(float(neg_f(rows).mean()) - log_z, abs=1e-10)
        assert d[f"{name}_ll_reverse"] == d[f"{name}_ll"] - (d["logZ_reverse"] - z)  # conservative, once
        # an RBM's -F is exact, so importance sampling gives the same number
        assert d[f"{name}_ll_importance"] == pytest.approx(d[f"{name}_ll"], abs=1e-10)
        assert d[f"{name}_ll_importance_reverse"] == conservative_log_likelihood(d[f"{name}_ll_importance"], z,
                                                                               d["logZ_reverse"])
    # the bracket in words: reverse below forward but inside forward AIS's band is agreement within error
    rev = d["logZ_reverse"]
    assert d["brackets"] == (rev >= z) and d["bracket"].startswith(
        "bracket:" if rev >= z else "agreement within error:" if lo <= rev <= hi else "no bracket:")
    assert d["importance_samples"] == 4 and d["data"] == "toy"
    json.dumps(d)  # results.json can hold it


def test_a_forward_estimate_made_before_is_not_run_again(rbm_and_data):
    model, x, test = rbm_and_data
    given = ForwardAIS(1.5, 1.4, 1.6, 42.0)
    report = evaluate_model(model, data={"test": test, "valid": None}, forward=given, log_z_exact=2.0)
    assert report.forward is given and report.logZ_reverse is None and report.logZ_exact == 2.0
    d = report.to_dict()
    assert d["test_ll"] == log_likelihood(model, test, 1.5)[0] and d["test_ll_exact"] == log_likelihood(
        model, test, 2.0)[0]
    assert "valid_ll" not in d and "logZ_reverse" not in d and "test_ll_reverse" not in d and "runs" not in d


class _TableReader(HTMLParser):
    """The (header cell, data cell) texts of each row of an HTML table, entities decoded."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self.rows[-1].append(self._cell)
            self._cell = None


def test_text_and_html_show_the_same_rows(rbm_and_data):
    model, x, test = rbm_and_data
    report = evaluate_model(model, data={"test": test}, base_data=x, ais=AISRuns(20, 100), exact=True,
                            reverse=ReverseAIS(n_gibbs=5, data=x), data_name="<toy & co>")
    d = report.to_dict()
    text = str(report).splitlines()
    assert text[0].startswith("log Z (AIS, 20 runs x 100 betas, layers [0] annealed): ")
    assert text[0].endswith("effective runs") and text[1].startswith("log Z (reverse AIS): ")
    assert text[2] == f"log Z (exact): {report.logZ_exact:.4f}" and text[-1] == "data: <toy & co>"
    # the forward figure, beside it the conservative one (with the reverse log Z) and the exact one
    assert text[3] == (f"test log-likelihood: {d['test_ll']:.4f} ± {d['test_ll_stderr']:.4f} nats (reverse log Z: "
                       f"{d['test_ll'] - (d['logZ_reverse'] - d['logZ']):.4f}; exact log Z: {d['test_ll_exact']:.4f})")
    html = report._repr_html_()
    assert html.startswith("<table class='natural-bm-evaluation'>") and html.endswith("</table>")
    assert "&lt;toy &amp; co&gt;" in html and "<toy" not in html
    reader = _TableReader()
    reader.feed(html)
    assert reader.rows == [list(row) for row in report.lines()]  # every row read back, cell by cell
    assert [f"{name}: {value}" for name, value in reader.rows] == text


def test_an_infeasible_exact_log_z_is_said_not_guessed():
    big = DBM([40, 40, 40], seed=0)
    report = evaluate_model(big, forward=ForwardAIS(0.0, 0.0, 0.0, 1.0), exact=True)
    d = report.to_dict()
    assert d["logZ_exact"] is None and "enumerate 2^40 states" in d["exact_error"]
    assert str(report).splitlines()[1].startswith("log Z (exact): ")


def test_per_image_ais_on_the_first_test_rows_beside_importance_sampling():
    dbm = randomize(DBM([5, 3, 2], dtype=torch.float64), 0.7, seed=2)
    test = (np.random.default_rng(1).random((9, 5)) < 0.5).astype(np.float64)
    z = log_partition_exact(dbm, progress=False)
    report = evaluate_model(dbm, data={"test": test}, forward=ForwardAIS(z, z, z, 1.0), importance_samples=20,
                            posterior=PosteriorAIS(3, 50, rows=4), seed=3)
    d = report.to_dict()
    rows = test[:4]
    assert (d["test_ll_posterior_ais"], d["test_ll_posterior_ais_stderr"]) == log_likelihood(
        dbm, rows, z, ais_chains=3, ais_betas=50, seed=3)
    assert d["posterior_rows"] == 4 and d["test_ll_importance_same_rows"] == log_likelihood(
        dbm, rows, z, importance_samples=20, seed=3)[0]
    every = evaluate_model(dbm, data={"test": test}, forward=ForwardAIS(z, z, z, 1.0), importance_samples=20,
                           posterior=PosteriorAIS(2, 10), seed=3).to_dict()
    assert every["posterior_rows"] == 9 and every["test_ll_importance_same_rows"] == every["test_ll_importance"]


def test_raise_on_the_first_test_rows_is_the_estimator_it_names(rbm_and_data):
    """RAISE's figure in the report is raise_log_likelihood's on the same rows, base and seed; with 300 betas it
    lies within a few hundredths of a nat of the exact mean log-likelihood of those rows (numpy enumeration),
    below it or at it within its noise (RAISE is conservative)."""
    model, x, test = rbm_and_data
    log_z, neg_f = _numpy_log_z_and_free_energy(model)
    report = evaluate_model(model, data={"test": test}, base_data=x, forward=ForwardAIS(log_z, log_z, log_z, 1.0),
                            raise_ais=RaiseAIS(8, 300, rows=12), seed=4)
    est = raise_log_likelihood(model, test[:12], n_chains=8, n_betas=300, base="data", data=x, seed=4)
    d = report.to_dict()
    assert (d["test_ll_raise"], d["test_ll_raise_stderr"]) == (est.mean, est.stderr)
    assert d["test_ll_raise_ess"] == pytest.approx(float(est.ess.mean()), abs=1e-12)
    assert 1.0 <= d["test_ll_raise_ess"] <= 8
    assert (d["raise_chains"], d["raise_betas"], d["raise_rows"]) == (8, 300, 12)
    exact = float(neg_f(test[:12]).mean()) - log_z
    assert abs(d["test_ll_raise"] - exact) < 0.05 and d["test_ll_raise"] < exact + 0.01
    line = str(report).splitlines()[-1]
    assert line == (f"test log-likelihood, RAISE (8 chains x 300 betas, first 12 rows): {est.mean:.4f} ± "
                     f"{est.stderr:.4f} nats (conservative), {d['test_ll_raise_ess']:.1f} effective chains per image")
    every = evaluate_model(model, data={"test": test}, forward=ForwardAIS(log_z, log_z, log_z, 1.0),
                           raise_ais=RaiseAIS(2, 20), seed=4).to_dict()
    assert every["raise_rows"] == len(test)
    assert evaluate_model(model, data={"train": x}, forward=ForwardAIS(log_z, log_z, log_z, 1.0),
                          raise_ais=RaiseAIS(2, 20)).raise_ll is None  # no test rows: nothing to anneal from


def test_logz_takes_the_data_by_name_and_never_guesses_it(tmp_path, capsys):
    model = random_rbm(784, 3, scale=0.01, seed=0, dtype=torch.float32)
    model.save(tmp_path / "m.pt")
    assert main(["logz", str(tmp_path / "m.pt"), "--n-runs", "4", "--n-betas", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("natural-bm: error: name the data with --data") and err.count("\n") == 1
    rows = (np.random.default_rng(0).random((12, 784)) < 0.3).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    assert main(["logz", str(tmp_path / "m.pt"), "--n-runs", "4", "--n-betas", "10", "--data",
                 str(tmp_path / "rows.npy"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"] == str(tmp_path / "rows.npy") and out["test_ll"] == pytest.approx(
        log_likelihood(model, rows, out["logZ"])[0]) and "train_ll" not in out
    assert main(["logz", str(tmp_path / "m.pt"), "--n-runs", "4", "--n-betas", "10", "--data", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"] == "none" and not [k for k in out if k.endswith("_ll")]
    (tmp_path / "config.json").write_text(json.dumps({"n_hidden": 3}))  # beside the model, but not a run's config
    assert main(["logz", str(tmp_path / "m.pt"), "--n-runs", "4", "--n-betas", "10"]) == 2
    err = capsys.readouterr().err
    assert "name the data with --data" in err and "is not a natural-bm train config" in err and err.count("\n") == 1


@pytest.mark.filterwarnings("ignore:mean log-likelihood")  # a random model: worse than guessing, as warned
def test_logz_reads_the_data_from_the_config_shipped_beside_a_model_file(tmp_path, capsys):
    """An experiment ships ``models/X.pt`` with ``models/X_config.json``: logz reads the data set from it."""
    from natural_bm.run.config import read_config
    from natural_bm.run.data import load_data

    model = random_rbm(9, 3, scale=0.5, seed=1, dtype=torch.float32)
    model.save(tmp_path / "X.pt")
    cfg = {"model": {"type": "rbm", "n_hidden": 3}, "data": {"name": "bars_and_stripes", "size": 3, "n_samples": 60},
           "training": {"epochs": 1}}
    (tmp_path / "X_config.json").write_text(json.dumps(cfg))
    assert main(["logz", str(tmp_path / "X.pt"), "--n-runs", "8", "--n-betas", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"] == "bars_and_stripes (X_config.json beside the model)"
    _, _, test, _ = load_data(read_config(tmp_path / "X_config.json"))
    assert out["test_ll"] == pytest.approx(log_likelihood(model, test, out["logZ"])[0])
