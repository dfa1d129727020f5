"""scripts/reproduce_quick.py: the tolerance rule and the stored README rows."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "reproduce_quick.py"
spec = importlib.util.spec_from_file_location("reproduce_quick", SCRIPT)
rq = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rq)


def test_summary_and_agreement_rule():
    mean, sd = rq.summarize([-3.206, -5.515, -3.573])
    assert mean == pytest.approx(-4.098, abs=1e-3) and sd == pytest.approx(1.241, abs=1e-3)
    assert rq.summarize([2.0]) == (2.0, 0.0)
    assert rq.agrees(-4.0, 0.5, -4.9, 0.4)  # within 2 x 0.5
    assert not rq.agrees(-4.0, 0.1, -4.5, 0.2)  # 0.5 > 2 x 0.2
    assert rq.agrees(1.0, 0.0, 1.015, 0.0) and not rq.agrees(1.0, 0.0, 1.03, 0.0)  # the 0.01 floor


def test_stored_rows_are_the_scripts_rows_with_their_provenance():
    rows = json.loads((SCRIPT.parent / "quick_rows.json").read_text())["rows"]
    assert set(rows) == set(rq.ROWS)
    for row in rows.values():
        assert row["seeds"] >= 3 and len(row["values"]) == row["seeds"]
        assert (row["mean"], row["sd"]) == pytest.approx(rq.summarize(row["values"]), abs=2e-3)
        assert row["commit"] and row["machine"] and row["date"]
