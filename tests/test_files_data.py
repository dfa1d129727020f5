"""Your own data from .npy, .npz and .csv files, from Python and from natural-bm train."""

import json

import numpy as np
import pytest

from natural_bm import RBM
from natural_bm.cli import main
from natural_bm.datasets import load_array, load_files
from natural_bm.datasets.arrays import split_rows
from natural_bm.estimators import log_likelihood

X = np.random.default_rng(0).random((120, 9)).astype(np.float32)


def test_load_array_reads_npy_npz_and_csv(tmp_path):
    np.save(tmp_path / "x.npy", X.reshape(120, 3, 3))  # images are flattened
    np.savez(tmp_path / "x.npz", images=X, labels=np.arange(120))
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", fmt="%.9g")
    np.savetxt(tmp_path / "h.csv", X, delimiter=",", fmt="%.9g", header=",".join(f"p{i}" for i in range(9)),
               comments="")
    for name, key in (("x.npy", None), ("x.npz", "images"), ("x.csv", None), ("h.csv", None)):
        np.testing.assert_array_equal(load_array(tmp_path / name, key), X)
    with pytest.raises(ValueError, match=r"holds arrays \['images', 'labels'\]; say which with data.key"):
        load_array(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="has no array 'pixels'"):
        load_array(tmp_path / "x.npz", "pixels")
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(ValueError, match=".npy, .npz or .csv"):
        load_array(tmp_path / "x.txt")
    (tmp_path / "bad.csv").write_text("a,b\nc,d\n")
    with pytest.raises(ValueError, match="cannot read a numeric matrix"):
        load_array(tmp_path / "bad.csv")


def test_seeded_fraction_splits_and_binarisation(tmp_path):
    np.save(tmp_path / "x.npy", X)
    train, valid, test = load_files(tmp_path / "x.npy", valid_fraction=0.25, test_fraction=0.25, seed=3)
    assert (len(train), len(valid), len(test)) == (60, 30, 30)
    rows = {tuple(r) for r in np.concatenate([train, valid, test])}
    assert rows == {tuple(r) for r in X}  # a partition of the rows
    again = load_files(tmp_path / "x.npy", valid_fraction=0.25, test_fraction=0.25, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, valid, test), again, strict=True))
    sampled = load_files(tmp_path / "x.npy", test_fraction=0.25, kind="sampled", seed=3)
    assert set(np.unique(np.concatenate(sampled[::2]))) == {0.0, 1.0}


def test_natural_bm_train_on_files(tmp_path):
    binary = (X > 0.5).astype(np.float32)
    np.save(tmp_path / "train.npy", binary[:100])
    np.savetxt(tmp_path / "test.csv", binary[100:], delimiter=",", fmt="%g")
    cfg = {"model": {"type": "rbm", "n_hidden": 4},
           "data": {"name": "files", "train": str(tmp_path / "train.npy"), "test": str(tmp_path / "test.csv"),
                    "valid_fraction": 0.2, "kind": "threshold"},
           "training": {"epochs": 2, "batch_size": 20}, "ais": {"n_runs": 10, "n_betas": 50, "exact": True},
           "samples": {"n_chains": 2, "n_samples": 2, "plot_every": 2, "image_shape": [3, 3]}, "seed": 1}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "r"), "--verbose", "0"]) == 0
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    model = RBM.load(tmp_path / "r" / "model.pt")
    assert results["test_ll_exact"] == pytest.approx(log_likelihood(model, binary[100:], results["logZ_exact"])[0])
    train, valid = split_rows(binary[:100], (0.2, 0.0), 1)[:2]
    assert len(train) == 80 and len(valid) == 20
    cfg["data"]["train"] = None
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "bad.json"), "--out", str(tmp_path / "b")]) == 2
