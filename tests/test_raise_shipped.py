"""``scripts/raise_shipped.py``'s output names: one file per budget, each found by the results pages."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import raise_shipped  # noqa: E402


def test_raise_file_names_and_the_results_pages_glob():
    model = Path("/x/models/dbm500_1000.pt")
    assert raise_shipped.raise_path(model) == Path("/x/models/dbm500_1000_raise.json")
    tagged = raise_shipped.raise_path(model, "1000betas")
    assert tagged == Path("/x/models/dbm500_1000_raise_1000betas.json")
    # the pages read every <name>_raise*.json beside the model (docs/_ext/nbm_results.py)
    assert tagged.match("dbm500_1000_raise*.json") and raise_shipped.raise_path(model).match("dbm500_1000_raise*.json")


def test_a_suffix_that_is_no_file_name_is_refused(capsys):
    with pytest.raises(SystemExit):
        raise_shipped.main(["--suffix", "../x"])
    assert "--suffix '../x'" in capsys.readouterr().err
