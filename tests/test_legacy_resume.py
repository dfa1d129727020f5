"""A results folder written by the runner before ``natural_bm.run`` resumes with today's code.

``tests/data/legacy_run_v1`` (see its README) holds a run of the old ``natural_bm/runner.py`` cut back to
what a kill during epoch 2 of 3 leaves, and that old runner's uninterrupted run's model and results.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from natural_bm import RBM
from natural_bm.cli import main

LEGACY = Path(__file__).parent / "data" / "legacy_run_v1"


def test_a_checkpoint_written_before_the_run_package_resumes_to_the_same_weights_and_results(tmp_path, recwarn):
    run = tmp_path / "run"
    shutil.copytree(LEGACY / "run", run)
    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    assert not [w for w in recwarn if "was edited" in str(w.message)]  # its config reads as it was written
    expected, resumed = RBM.load(LEGACY / "expected" / "model.pt"), RBM.load(run / "model.pt")
    # to an ulp, not bit for bit: the old runner's files were written on another CPU, and this machine's
    # AMD EPYC (CI failed alike) rounds the float32 products differently (measured: weights 9e-9 apart,
    # figures 4e-8 nats)
    for name in expected.param_names:
        torch.testing.assert_close(getattr(resumed, name), getattr(expected, name), rtol=0, atol=1e-6, msg=name)
    old = json.loads((LEGACY / "expected" / "results.json").read_text())
    new = json.loads((run / "results.json").read_text())
    for key, value in old.items():  # every key the old results had, with its value (new keys may be added)
        assert new[key] == (pytest.approx(value, rel=0, abs=1e-6) if isinstance(value, float) else value), key
    assert new["data"]["name"] == "bars_and_stripes"
    assert [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]] == [0, 1, 2]
