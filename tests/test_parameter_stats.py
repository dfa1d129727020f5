"""``parameter_stats`` and ``natural-bm inspect`` against numpy on known weights."""

import json

import numpy as np
import pytest
import torch

from natural_bm import DBM, RBM
from natural_bm.cli import main
from natural_bm.viz import format_parameter_stats, parameter_stats


def _dbm_with_known_parameters():
    rng = np.random.default_rng(3)
    dbm = DBM([6, 5, 4], seed=0)
    values = {"W_0_1": rng.normal(0, 2, (6, 5)), "W_1_2": rng.normal(0, 0.5, (5, 4)),
              "b_0": np.array([-12.0, 0.5, 3.0, 11.0, -1.0, 0.0]), "b_1": rng.normal(0, 1, 5),
              "b_2": np.array([25.0, -30.0, 0.1, -0.2])}
    with torch.no_grad():
        for name, v in values.items():
            dbm.parameter_dict()[name].copy_(torch.as_tensor(v, dtype=torch.float32))
    return dbm, {k: v.astype(np.float32).astype(np.float64) for k, v in values.items()}


def test_parameter_stats_match_numpy():
    dbm, values = _dbm_with_known_parameters()
    rows = {r["name"]: r for r in parameter_stats(dbm, pinned=10.0)}
    assert list(rows) == ["W_0_1", "W_1_2", "b_0", "b_1", "b_2"]
    for name in ("W_0_1", "W_1_2"):
        w, r = values[name], rows[name]
        cols, lines = np.linalg.norm(w, axis=0), np.linalg.norm(w, axis=1)
        assert r["shape"] == list(w.shape)
        assert r["abs_max"] == pytest.approx(np.abs(w).max(), rel=1e-12)
        assert r["col_norm_min"] == pytest.approx(cols.min(), rel=1e-12)
        assert r["col_norm_max"] == pytest.approx(cols.max(), rel=1e-12)
        assert r["col_norm_median"] == pytest.approx(np.sort(cols)[(len(cols) - 1) // 2], rel=1e-12)
        assert r["row_norm_median"] == pytest.approx(np.sort(lines)[(len(lines) - 1) // 2], rel=1e-12)
        assert r["row_norm_max"] == pytest.approx(lines.max(), rel=1e-12)
    assert rows["b_0"]["beyond_pinned"] == 2 and rows["b_2"]["beyond_pinned"] == 2
    assert rows["b_0"]["min"] == -12.0 and rows["b_2"]["max"] == 25.0
    assert rows["b_0"]["median"] == 0.0  # lower median of -12, -1, 0, 0.5, 3, 11
    assert {r["beyond_pinned"] for r in parameter_stats(dbm, pinned=26.0) if "beyond_pinned" in r} == {0, 1}
    text = format_parameter_stats(list(rows.values()))
    assert "W_1_2" in text and f"{rows['W_0_1']['col_norm_max']:.3f}" in text
    assert "|.| > 10 " in text.replace("\n", " ")
    with pytest.raises(ValueError, match="pinned"):
        parameter_stats(dbm, pinned=0)


def test_inspect_command_prints_the_stats_of_a_saved_model(tmp_path, capsys):
    rbm = RBM(7, 3, seed=1)
    path = tmp_path / "rbm.pt"
    rbm.save(path)
    assert main(["inspect", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(rbm.parameter_dict())
    w = next(r for r in rows if len(r["shape"]) == 2)
    assert w["col_norm_max"] == pytest.approx(rbm.parameter_dict()[w["name"]].double().norm(dim=0).max().item())
    assert main(["inspect", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
