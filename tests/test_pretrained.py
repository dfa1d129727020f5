"""Shipped models by name: the catalogue, its results read from the JSON beside each file, loading by name,
and what a model outside the installed package says without a source checkout."""

import json
import math

import pytest
import torch

import natural_bm.pretrained as pretrained
from natural_bm import DBM, RBM, load_model

SHIPPED = {"rbm500-cd25-anneal": "rbm500_cd25_anneal", "dbm500-1000": "dbm500_1000_pretrained_centred_long3"}


def _json(stem: str) -> dict:
    return json.loads((pretrained.HERE / f"{stem}_results.json").read_text())


def test_the_best_rbm_and_dbm_ship_inside_the_package_with_their_results():
    entries = {e.name: e for e in pretrained.list()}
    assert list(entries)[:2] == list(SHIPPED)  # shipped first
    for name, stem in SHIPPED.items():
        e = entries[name]
        assert e.shipped and e.path == pretrained.HERE / f"{stem}.pt" and e.results == _json(stem)
        line = str(e)
        assert line.startswith(f"{name}: ") and "\n" not in line
        assert f"log Z {e.results['logZ']:.2f}" in line and e.results["bracket"] in line
        assert f"test {e.results['test_ll']:.2f}" in line or f"bound {e.results['test_ll']:.2f}" in line
    assert "test (importance-sampled) " + f"{_json(SHIPPED['dbm500-1000'])['test_ll_importance']:.2f}" in str(
        entries["dbm500-1000"])
    # one copy in the repository, and a wheel under 10 MB: the package's files
    assert not (pretrained.SOURCE_ROOT / "experiments/rbm_mnist_sm2008/models/rbm500_cd25_anneal.pt").exists()
    assert not (pretrained.SOURCE_ROOT / "experiments/dbm_mnist_sh2009/models/"
                "dbm500_1000_pretrained_centred_long3.pt").exists()
    assert sum(f.stat().st_size for f in pretrained.HERE.iterdir() if f.is_file()) < 8e6


def test_load_by_name_attaches_the_results():
    rbm = pretrained.load("rbm500-cd25-anneal")
    assert isinstance(rbm, RBM) and (rbm.n_visible, rbm.n_hidden) == (784, 500)
    assert rbm.pretrained.results == _json("rbm500_cd25_anneal") and rbm.pretrained.name == "rbm500-cd25-anneal"
    same = load_model(pretrained.HERE / "rbm500_cd25_anneal.pt")
    assert torch.equal(rbm.W, same.W) and torch.equal(rbm.hbias, same.hbias)
    dbm = pretrained.load("DBM500_1000_pretrained_centred_long3.pt", dtype=torch.float64)  # alias, any spelling
    assert isinstance(dbm, DBM) and dbm.layer_sizes == [784, 500, 1000] and dbm.dtype == torch.float64
    assert dbm.pretrained.name == "dbm500-1000"
    assert pretrained.results("dbm500-1000") == _json("dbm500_1000_pretrained_centred_long3")
    assert pretrained.path("rbm500_cd25_anneal") == pretrained.HERE / "rbm500_cd25_anneal.pt"


def test_unknown_names_name_the_nearest():
    with pytest.raises(ValueError, match="no pretrained model is called 'rbm500-cd52-anneal'. Did you mean "
                                         "'rbm500-cd25-anneal'"):
        pretrained.load("rbm500-cd52-anneal")
    with pytest.raises(TypeError, match="is a string"):
        pretrained.path(3)
    assert pretrained.is_name("dbm500-1000") and not pretrained.is_name("runs/x/model.pt")


def test_models_under_experiments_load_in_a_checkout_and_say_so_without_one(monkeypatch, tmp_path):
    entry = {e.name: e for e in pretrained.list()}["rbm500-cd25"]
    assert not entry.shipped and entry.source == "experiments/rbm_mnist_sm2008/models/rbm500_cd25.pt"
    if entry.path is not None:  # a source checkout (this repository)
        assert isinstance(pretrained.load("rbm500-cd25"), RBM)
        assert entry.results["test_ll"] == json.loads(
            (pretrained.SOURCE_ROOT / "experiments/rbm_mnist_sm2008/models/rbm500_cd25_results.json").read_text()
        )["test_ll"]
    monkeypatch.setattr(pretrained, "SOURCE_ROOT", tmp_path)  # an installed package: no experiments/ beside it
    with pytest.raises(FileNotFoundError, match="'rbm500-cd25' is not shipped in the installed package: it lives "
                                                "at experiments/rbm_mnist_sm2008/models/rbm500_cd25.pt in a "
                                                "source checkout"):
        pretrained.load("rbm500-cd25")
    line = str({e.name: e for e in pretrained.list()}["rbm500-cd25"])
    assert "[in a source checkout: experiments/" in line and "results need a source checkout" in line
    assert isinstance(pretrained.load("rbm500-cd25-anneal"), RBM)  # the shipped ones still load


def test_describe_results_reads_the_numbers_it_is_given():
    text = pretrained.describe_results({"logZ": 1.234, "logZ_lo": -math.inf, "logZ_hi": 2.5, "test_ll": -3.0,
                                        "test_ll_stderr": 0.25, "test_accuracy": 0.5})
    assert text == ("log Z 1.23 (+3σ 2.50; -3σ unbounded: few effective AIS runs); test -3.00 ± 0.25 nats per "
                    "image; test accuracy 0.5000")
