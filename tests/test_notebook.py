"""Notebook niceties, tested without a notebook server: progress bars through tqdm.auto, History as a
DataFrame, a model's repr (layer sizes, unit types, parameter count)."""

import ast
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import natural_bm
from natural_bm import DBM, RBM, SGD
from natural_bm.callbacks.history import History
from natural_bm.models.layered import LayeredBM

PACKAGE = Path(natural_bm.__file__).parent


def test_every_progress_bar_comes_from_tqdm_auto():
    """tqdm.auto gives a widget in Jupyter and plain text elsewhere; `from tqdm import tqdm` would give text
    in notebooks too."""
    imports = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tqdm":
                imports.append((path.relative_to(PACKAGE).as_posix(), node.module))
            elif isinstance(node, ast.Import):
                imports += [(path.relative_to(PACKAGE).as_posix(), a.name) for a in node.names
                            if a.name.split(".")[0] == "tqdm"]
    assert imports and all(module == "tqdm.auto" for _, module in imports), imports
    assert "callbacks/progbar_logger.py" in {p for p, _ in imports}


def test_the_progress_bar_is_plain_text_outside_a_notebook(capsys):
    import tqdm.auto
    import tqdm.std

    from natural_bm.callbacks import progbar_logger

    assert progbar_logger.tqdm is tqdm.auto.tqdm and issubclass(tqdm.auto.tqdm, tqdm.std.tqdm)
    m = RBM(6, 3, seed=0).compile(SGD(0.1), "cd")
    m.fit(np.random.default_rng(0).random((40, 6)), batch_size=10, epochs=2, verbose=1, seed=0)
    text = capsys.readouterr().err
    assert "Epoch 0 (1/2)" in text and "4/4" in text and "loss:" in text  # a text bar and the epoch's logs


def test_history_to_dataframe_indexes_by_epoch():
    x = np.random.default_rng(0).random((60, 6))
    m = RBM(6, 3, seed=0).compile(SGD(0.1), "pcd", n_chains=10)
    hist = m.fit(x, batch_size=20, epochs=3, validation_data=x[:20], verbose=0, seed=0)
    df = hist.to_dataframe()
    assert isinstance(df, pd.DataFrame) and df.index.name == "epoch" and list(df.index) == [0, 1, 2]
    assert list(df.columns) == list(hist.history)
    assert {"loss", "pll", "val_loss", "val_pll", "free_energy_gap"} <= set(df.columns)
    np.testing.assert_array_equal(df["loss"].to_numpy(), hist.history["loss"])
    h = History()  # a key logged in some epochs only (AIS): NaN in the others, as log.csv's empty cells
    h.on_train_begin()
    h.on_epoch_end(4, {"loss": 2.0})
    h.on_epoch_end(5, {"loss": 1.5, "logZ": 10.0})
    df = h.to_dataframe()
    assert list(df.index) == [4, 5] and math.isnan(df.loc[4, "logZ"]) and df.loc[5, "logZ"] == 10.0


@pytest.mark.parametrize("model, expected", [
    (RBM(784, 500), "RBM(784 bernoulli -> 500 bernoulli; 393,284 parameters: 392,000 weights, 1,284 biases)"),
    (RBM(784, 500, up_factor=2.0, dtype=torch.float64),
     f"RBM(784 bernoulli -> 500 bernoulli; input factors 0->1 ×2; {784 * 500 + 1284:,} parameters: "
     f"{784 * 500:,} weights, 1,284 biases; float64)"),
    (RBM(12, 5, units=[{"type": "gaussian", "sigma": 0.7, "learn_sigma": True}, "bernoulli"]),
     "RBM(12 gaussian(learned σ) -> 5 bernoulli; 89 parameters: 60 weights, 17 biases, 12 log σ)"),
    (RBM(3, 5, units=[{"type": "gaussian", "sigma": [0.5, 1.0, 2.0]}, "bernoulli"]),
     "RBM(3 gaussian(σ 0.5 to 2) -> 5 bernoulli; 23 parameters: 15 weights, 8 biases)"),
    (DBM([784, 500, 1000]), f"DBM(784 bernoulli -> 500 bernoulli -> 1000 bernoulli; {892_000 + 2284:,} parameters: "
                            f"{784 * 500 + 500 * 1000:,} weights, 2,284 biases)"),
    (DBM([8, 4, 6, 3], topology={0: [1, 3], 1: [2], 2: [3]},
         units=["gaussian", "bernoulli", {"type": "softmax", "group_size": 3}, "bernoulli"]),
     f"DBM(8 gaussian(σ=1), 4 bernoulli, 6 softmax(groups of 3), 3 bernoulli; edges 0-1 0-3 1-2 2-3; "
     f"{8 * 4 + 8 * 3 + 4 * 6 + 6 * 3 + 21} parameters: {8 * 4 + 8 * 3 + 4 * 6 + 6 * 3} weights, 21 biases)"),
    (DBM([784, 500, 10], units=["bernoulli", "bernoulli", "softmax"]),
     f"DBM(784 bernoulli -> 500 bernoulli -> 10 softmax; {397_000 + 1294:,} parameters: 397,000 weights, "
     f"1,294 biases)"),
])
def test_a_models_repr_states_layers_units_and_parameter_count(model, expected):
    assert LayeredBM.__repr__(model) == expected
    counts = re.search(r"; ([\d,]+) parameters: ([\d,]+) weights, ([\d,]+) biases", expected).groups()
    total, weights, biases = (int(c.replace(",", "")) for c in counts)
    assert total == sum(p.numel() for p in model.parameter_dict().values())
    assert weights == sum(model.weight(i, j).numel() for i, j in model.edges)
    assert biases == sum(model.bias(k).numel() for k in range(model.n_layers))
