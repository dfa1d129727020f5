"""Configs generated to break the runner (issue 35 part 4): any mapping of keys and values either trains or is
refused with one line that names a key, before anything is written into the results folder.

The examples start from a tiny valid config (bars and stripes, 1 epoch) and change a few keys: known keys
get values of every type (valid ones too, so that many examples train), unknown keys and sections appear.
The default profile ("quick", tests/conftest.py) tries a fixed few; NATURAL_BM_HYPOTHESIS_PROFILE=nightly
tries many more, new ones each run.

Learning rates and weight scales above 2 are left out: they make a valid run diverge (its AIS then fails
after training), which TerminateOnNaN reports (exit 3) and no check of the config can foresee.
"""

import contextlib
import dataclasses
import io
import json
import math
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from natural_bm.callbacks import PlotCallback
from natural_bm.cli import main
from natural_bm.run.config import RunConfig, section_classes

BASE = {"model": {"type": "rbm", "n_hidden": 3}, "data": {"name": "bars_and_stripes", "size": 2, "n_samples": 12},
        "training": {"epochs": 1, "batch_size": 4, "n_chains": 4}, "ais": {"n_runs": 2, "n_betas": 3},
        "samples": {"n_chains": 1, "n_samples": 1, "plot_every": 1}, "seed": 0}

SECTIONS = section_classes()
KEYS = [(s, f.name) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)] + [
    (None, f.name) for f in dataclasses.fields(RunConfig) if f.name not in SECTIONS]
#: values a key is likely to accept, so that examples train as well as fail (sizes kept small: the data is tiny)
LIKELY = {"type": ["rbm", "dbm", "dbn"], "name": ["bars_and_stripes", "digits", "files"], "algorithm": [
    "auto", "cd", "pcd", "exact", "mfpcd", "pt"], "kind": ["probability", "sampled", "threshold", "stochastic",
                                                         "standardized"], "units": [["bernoulli", "bernoulli"],
    ["gaussian", "bernoulli"], ["bernoulli", "bernoulli", "softmax"],
    [{"type": "gaussian", "sigma": 0.5}, "bernoulli"]],
    "layer_sizes": [[4, 3], [4, 3, 2], [64, 3, 10]], "centering": [True, {"rate": 0.1}, {"target": "data"}],
    "sparsity": [{"target": 0.1}, {"target": {1: 0.2}}], "image_shape": [[2, 2], [1, 4], [4, 1]],
    "schedule": [{"lr": [[0, 0.1]]}, {"k": {"from": 1, "to": 3, "every": 1}}], "parity": ["auto", 0, 1],
    "lr": [[[0, 0.05], [1, 0.01]], {"from": 0.1, "to": 0.01, "over": 2}], "momentum": [[[0, 0.5]]],
    "k": [[[0, 1], [1, 2]], {"from": 1, "to": 2, "every": 1}], "callbacks": [[{"name": "OptimizerSpy"}],
    [{"name": "EarlyStopping", "args": {"monitor": "loss", "patience": 0}}], [{"name": "TerminateOnNaN"}]],
    "device": ["cpu", "cuda", "tpu"], "labels": [True, False], "epochs": [1, 2, [1, 1]]}

scalars = st.one_of(st.integers(-3, 12), st.floats(-2, 2), st.sampled_from([math.nan, math.inf, -math.inf, 1e-3]),
                    st.booleans(), st.none(), st.text(max_size=6), st.sampled_from(["1e-2", "3", "auto", "x.npy"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=4) | st.integers(0, 3), inner, max_size=2), max_leaves=4)


DEFAULTS = {(s, f.name): (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for s, cls in [*SECTIONS.items(), (None, RunConfig)] for f in dataclasses.fields(cls)
            if (s is None) == (cls is RunConfig) and f.name not in (SECTIONS if s is None else ())}


def _near(default):
    """Values of the default's type, in and around the ranges keys take."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(-1, 8)
    if isinstance(default, float):
        return st.floats(-0.5, 1.5) | st.sampled_from([0.0, 1.0, 1e-3, math.nan, math.inf, "1e-2"])
    return values


@st.composite
def changes(draw):
    """A few (section or None, key, value) changes of BASE: known keys with likely, nearby or any values, and
    now and then an unknown key or section."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 14)) == 0:
            section = draw(st.sampled_from([None, "model", "training", "trainnig", "ais"]))
            out.append((section, draw(st.text(min_size=1, max_size=8)), draw(values)))
            continue
        section, key = draw(st.sampled_from(KEYS))
        arm = draw(st.integers(0, 3))
        pool = LIKELY.get(key)
        if arm <= 1 and pool:
            value = draw(st.sampled_from(pool))
        elif arm <= 2:
            value = draw(_near(DEFAULTS[(section, key)]))
        else:
            value = draw(values)
        out.append((section, key, value))
    return out


def _config(changed) -> dict:
    cfg = json.loads(json.dumps(BASE))
    for section, key, value in changed:
        if section is None:
            cfg[key] = value
        else:
            if not isinstance(cfg.get(section), dict):
                cfg[section] = {}
            cfg[section][key] = value
    return cfg


def _numbers(value):
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, str):
        try:
            return [float(value)]
        except ValueError:
            return []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [n for v in items for n in _numbers(v)]


def _diverges(cfg: dict) -> bool:
    """Whether a learning rate or weight scale above 2 (or not finite) is in ``cfg``."""
    def section(name):
        return cfg.get(name) if isinstance(cfg.get(name), dict) else {}

    pretrain_schedule = section("pretrain").get("schedule")
    scales = [section("optimizer").get("lr"), section("pretrain").get("lr"), section("model").get("weight_scale"),
              section("schedule").get("lr"),
              pretrain_schedule.get("lr") if isinstance(pretrain_schedule, dict) else None]
    return any(not abs(n) <= 2 for v in scales for n in _numbers(v))


def _names_a_key(message: str, changed) -> bool:
    paths = {f"{s}.{k}" for s, k in KEYS if s} | {k for s, k in KEYS if s is None} | set(SECTIONS)
    paths |= {str(k) if s is None else f"{s}.{k}" for s, k, _ in changed} | {str(s) for s, _, _ in changed if s}
    return any(p in message for p in paths)


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(changes())
def test_any_config_trains_or_is_refused_in_one_line_naming_a_key(changed):
    cfg = _config(changed)
    assume(not _diverges(cfg))
    tmp = Path(tempfile.mkdtemp(prefix="nbm_prop_"))
    try:
        (tmp / "cfg.json").write_text(json.dumps(cfg, allow_nan=True))
        out = tmp / "run"
        err = io.StringIO()
        with mock.patch.object(PlotCallback, "plot", lambda self, *a, **k: None), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):  # (no history.png: drawing it takes seconds an example)
            status = main(["train", str(tmp / "cfg.json"), "--out", str(out), "--verbose", "0"])
        text = err.getvalue()
        if status == 2:
            lines = [line for line in text.splitlines() if line.startswith("natural-bm:")]
            assert len(lines) == 1 and lines[0].startswith("natural-bm: error:"), text
            assert _names_a_key(lines[0], changed), lines[0]
            assert not out.exists(), (lines[0], sorted(p.name for p in out.iterdir()))
        else:
            assert status in (0, 3), (status, text)  # trained (complete, early-stopped) or diverged
            results = json.loads((out / "results.json").read_text())
            assert results["status"] in ("complete", "early_stopped", "diverged")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@st.composite
def data_files(draw):
    """A data matrix (random shape, range, NaN or inf here and there, float or int) and the model config keys."""
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    lo, hi = draw(st.sampled_from([(0.0, 1.0), (0.0, 1.0), (-2.0, 2.0), (0.0, 255.0), (0.5, 1.5)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = lo + (hi - lo) * rng.random((rows, cols))
    if draw(st.booleans()):
        x = np.round(x)
    if draw(st.integers(0, 4)) == 0:
        x[draw(st.integers(0, rows - 1)), draw(st.integers(0, cols - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    units = draw(st.sampled_from([None, ["gaussian", "bernoulli"], ["bernoulli", "bernoulli"]]))
    return x.astype(draw(st.sampled_from([np.float32, np.float64]))), units, draw(st.sampled_from([".npy", ".csv"]))


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(data_files(), st.sampled_from([0.0, 0.25]), st.sampled_from(["rbm", "dbm"]))
def test_any_data_file_trains_or_is_refused_before_anything_is_written(data, valid_fraction, model_type):
    x, units, suffix = data
    tmp = Path(tempfile.mkdtemp(prefix="nbm_prop_"))
    try:
        path = tmp / f"x{suffix}"
        np.save(path, x) if suffix == ".npy" else np.savetxt(path, x, delimiter=",")
        model = {"type": model_type, "n_hidden": 3, "units": units if model_type == "rbm" else
                 (None if units is None else [*units, "bernoulli"])}
        if model_type == "dbm":
            model["layer_sizes"] = [x.shape[1], 3, 2]
        cfg = {**BASE, "model": model, "data": {"name": "files", "train": str(path), "valid_fraction": valid_fraction}}
        (tmp / "cfg.json").write_text(json.dumps(cfg))
        out, err = tmp / "run", io.StringIO()
        with mock.patch.object(PlotCallback, "plot", lambda self, *a, **k: None), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            status = main(["train", str(tmp / "cfg.json"), "--out", str(out), "--verbose", "0"])
        lines = [line for line in err.getvalue().splitlines() if line.startswith("natural-bm:")]
        if status == 2:
            assert len(lines) == 1 and lines[0].startswith("natural-bm: error:"), err.getvalue()
            assert "data" in lines[0] or "model" in lines[0] or str(path) in lines[0], lines[0]
            assert not out.exists(), lines[0]
        else:
            assert status == 0, err.getvalue()
            assert json.loads((out / "results.json").read_text())["status"] == "complete"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
