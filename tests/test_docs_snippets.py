"""The documentation cannot drift from the code: its Python blocks run, its generated parts are current.

* Every fenced ```` ```python ```` block of ``README.md`` and of ``docs/guide/*.md`` runs, in order, in
  one namespace per file, in a temporary folder, with ``NATURAL_BM_DATA`` pointing at MNIST. Blocks
  fenced as ``text``, ``console``, ``bash``, ``yaml`` (anything but ``python``) are shown, not run.
  A file whose blocks need MNIST is skipped when no MNIST folder is found (the tests never download).
* README.md's headline results table is the one ``docs/_ext/readme_table.py`` renders from the
  result files shipped beside the models (run ``python docs/_ext/readme_table.py --write`` after a
  result changes).
* Every name in an ``__all__`` of natural_bm resolves to an object that the API reference gives a
  page (``docs/_ext/apigen.py``); the Sphinx build checks the pages themselves.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "docs" / "_ext"
sys.path.insert(0, str(EXT))

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of every fenced block whose info string is exactly ``python``."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and lines[i].strip().strip(fence[0]) == ""):
            body.append(lines[i][len(match["indent"]):] if lines[i].startswith(match["indent"]) else lines[i])
            i += 1
        i += 1
        if info.split()[:1] == ["python"]:
            blocks.append((start + 1, "\n".join(body) + "\n"))
    return blocks


def test_python_blocks_are_found_and_others_are_not():
    text = "\n".join(["# t", "```python", "a = 1", "```", "```console", "$ b", "```", "````python", "```", "c = 2",
                      "````", "```text", "d", "```", "```yaml", "e: 1", "```"])
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "```\nc = 2\n")]


def _mnist_folder() -> Path | None:
    for candidate in (os.environ.get("NATURAL_BM_DATA"), ROOT.parent / "shared" / "data" / "mnist"):
        if candidate and Path(candidate).is_dir() and any(Path(candidate).iterdir()):
            return Path(candidate).resolve()
    return None


DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path, tmp_path, monkeypatch):
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip(f"{path.name} has no python blocks")
    mnist = _mnist_folder()
    if mnist is None and any("load_mnist" in code for _, code in blocks):
        pytest.skip("no MNIST folder ($NATURAL_BM_DATA or ../shared/data/mnist); the tests never download")
    if mnist is not None:
        monkeypatch.setenv("NATURAL_BM_DATA", str(mnist))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace: dict = {"__name__": f"docs_snippet_{path.stem}"}
    try:
        for line, code in blocks:
            try:
                exec(compile(code, f"{path}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{path.relative_to(ROOT)}, the python block at line {line} failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
    finally:
        plt.close("all")


def test_readme_headline_table_is_generated_from_the_result_files():
    import readme_table

    text = readme_table.README.read_text(encoding="utf-8")
    assert readme_table.START in text and readme_table.END in text, "README.md lost the headline table's markers"
    assert readme_table.current(text) == readme_table.render(), (
        "README.md's headline table differs from the result files: run `python docs/_ext/readme_table.py --write`")


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    outside_table = text.split("<!-- headline-table:start")[0] + text.split("<!-- headline-table:end -->")[-1]
    assert not re.search(r"\bcommit [0-9a-f]{7}\b", outside_table), "no commit hashes in the README"


def _raw_estimates(models: Path, name: str) -> tuple[list[float], dict]:
    """Every log Z in a model's files, read here without the documentation's code."""
    results = json.loads((models / f"{name}_results.json").read_text())
    values = [results["logZ"], results.get("logZ_reverse")]
    for extra in models.glob(f"{name}_logz*.json"):
        data = json.loads(extra.read_text())
        values += [data.get("logZ"), data.get("logZ_reverse")]
    return [v for v in values if v is not None and math.isfinite(v)], results


def test_quoted_figure_uses_the_largest_current_log_z():
    """The quoted DBM figures are the results file's data term with the largest log Z that no longer
    anneal with more betas supersedes: checked against the raw JSON of the best DBM."""
    import nbm_results

    models = ROOT / "experiments" / "dbm_mnist_sh2009" / "models"
    name = "dbm500_1000_pretrained_centred_long"
    if not (models / f"{name}_results.json").exists():
        pytest.skip("the best DBM's results are not in this checkout")
    values, results = _raw_estimates(models, name)
    # the 14,501-beta file on the v, h2 path is superseded by the 100,001-beta one on that path
    short = json.loads((models / f"{name}_logz_parity0_14501betas.json").read_text())
    values = [v for v in values if v not in (short["logZ"], short["logZ_reverse"])]
    largest = max(values)
    model = nbm_results.load_model("dbm_mnist_sh2009", name)
    assert model.quoted.log_z == largest
    bound, _ = model.figure("test_ll")
    assert bound == pytest.approx(results["test_ll"] + results["logZ"] - largest, abs=1e-9)
    tight, _ = model.figure("test_ll_importance")
    assert tight == pytest.approx(results["test_ll_importance"] + results["logZ"] - largest, abs=1e-9)
    assert model.believable[0]


def test_a_model_without_files_reads_pending(tmp_path, monkeypatch):
    import nbm_results
    import nbm_tables

    folder = tmp_path / "exp"
    (folder / "models").mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({"later": {"layer_sizes": [784, 500, 500, 1000],
                                                                  "commit": None}}))
    monkeypatch.setattr(nbm_results, "EXPERIMENTS", tmp_path)
    [model] = nbm_results.load_experiment("exp")
    assert model.pending and model.missing_text == nbm_results.PENDING
    table = nbm_tables.likelihood_table([model])
    assert nbm_results.PENDING in table and "-85.10" in table  # SH2009's 3-layer number in its own column
    assert not re.search(r"\| -?\d+\.\d+ ± ", table), "no figure of ours without a file"


def test_a_started_run_reads_pending_and_a_finished_one_without_files_not_shipped(tmp_path, monkeypatch):
    import nbm_results

    folder = tmp_path / "exp"
    (folder / "models").mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({
        "running": {"layer_sizes": [784, 500], "commit": "1088a56", "date": "2026-12-08", "status": "training"},
        "unshipped": {"layer_sizes": [784, 500], "commit": "1088a56", "date": "2026-12-08"}}))
    monkeypatch.setattr(nbm_results, "EXPERIMENTS", tmp_path)
    models = {m.name: m for m in nbm_results.load_experiment("exp")}
    assert models["running"].missing_text == nbm_results.PENDING
    assert models["unshipped"].missing_text == f"{nbm_results.NOT_RECORDED} (result files not shipped)"


def test_every_public_name_has_an_api_page():
    import apigen

    index = apigen.collect()
    assert not index.errors, index.errors
    for modname, names in index.modules.items():
        for name in names:
            path = f"{modname}.{name}"
            obj = getattr(sys.modules[modname], name)
            if type(obj).__name__ == "module":
                continue
            assert path in index.aliases, f"{path} is in __all__ but has no API page"
            canonical = index.aliases[path]
            assert index.objects[canonical].obj is obj
    pages = [apigen.page_name(c, index) for c in index.objects]
    assert len(set(pages)) == len(pages)
    assert not set(pages) & set(index.modules), "an object page would overwrite a module page"


def test_raise_rows_read_the_files_and_say_when_one_is_missing(tmp_path, monkeypatch):
    """The RAISE table: each file's figures as the JSON holds them, the difference computed from them, and
    "not yet measured" for a model whose weights ship without its ``_raise.json``."""
    import nbm_results
    import nbm_tables

    folder = tmp_path / "exp"
    models = folder / "models"
    models.mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({"a": {"layer_sizes": [784, 500]},
                                                        "b": {"layer_sizes": [784, 500]}}))
    for name in ("a", "b"):
        (models / f"{name}_results.json").write_text(json.dumps({"logZ": 250.0, "test_ll": -80.0}))
        (models / f"{name}.pt").write_bytes(b"")
    raw = {"rows": 200, "chains": 10, "betas": 10000, "test_ll_raise": -81.7012, "test_ll_raise_stderr": 1.5,
           "raise_ess_median": 6.53, "test_ll_forward_same_rows": -81.4787, "test_ll_same_rows_stderr": 1.4,
           "test_ll_reverse_same_rows": -81.5201, "wall_time_s": 488.0, "threads": 1}
    (models / "a_raise.json").write_text(json.dumps(raw))
    (models / "b_raise_1000betas.json").write_text(json.dumps({**raw, "betas": 1000, "test_ll_raise": -90.0}))
    monkeypatch.setattr(nbm_results, "EXPERIMENTS", tmp_path)
    monkeypatch.setattr(nbm_results, "PRETRAINED", tmp_path / "none")
    table = nbm_tables.raise_table(nbm_results.load_experiment("exp"))
    rows = {line.split(" | ")[0] + " " + line.split(" | ")[2]: line for line in table.splitlines()[2:]}
    a = rows["| `a` 10 × 10,000"]
    assert "**-81.70 ± 1.50**" in a and "6.5 of 10" in a and "-81.48 ± 1.40 (-81.52)" in a
    assert f"{raw['test_ll_raise'] - raw['test_ll_forward_same_rows']:+.2f}" in a  # -0.22
    assert "+" + f"{-90.0 - raw['test_ll_forward_same_rows']:.2f}" not in rows["| `b` 10 × 1,000"]
    assert "-8.52" in rows["| `b` 10 × 1,000"]
    missing = [line for line in table.splitlines() if line.startswith("| `b` ") and nbm_results.NOT_MEASURED in line]
    assert len(missing) == 1 and "`raise.json`" in missing[0], "b's _raise.json is not written yet"
    assert not any(line.startswith("| `a` ") and nbm_results.NOT_MEASURED in line for line in table.splitlines())


def test_dbn_rows_read_either_results_format(tmp_path, monkeypatch):
    """A DBN's results from natural-bm train (logZ, test_ll, test_ll_reverse) and from the older run.py
    (logZ_top, test_bound, test_bound_reverse) give the same cells; the bold, quoted figure is the one with
    the larger log Z, and the headline quotes it."""
    import nbm_results
    import nbm_tables

    folder = tmp_path / "mnist_dbn"
    (folder / "models").mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({
        "new": {"layer_sizes": [784, 500, 500, 2000]}, "old": {"layer_sizes": [784, 500, 2000]}}))
    new = {"rbm_epochs": [0, 50, 50], "logZ": 200.88, "logZ_lo": 200.45, "logZ_hi": 201.18, "ais_ess": 42.4,
           "runs": 100, "betas": 100001, "logZ_reverse": 200.58, "ais_ess_reverse": 33.5, "test_ll": -93.97,
           "test_ll_stderr": 0.24, "test_ll_reverse": -93.67,
           "provenance": {"git_commit": "beb0033a587ad21bdaecaf2fdec5f1a1babe803f", "wall_time_s": 3607.0}}
    old = {"top_epochs": 20, "logZ_top": 256.93, "logZ_top_lo": 255.80, "logZ_top_hi": 257.45, "ais_ess": 16.6,
           "logZ_top_reverse": 257.37, "ais_ess_reverse": 5.2, "test_bound": -93.74, "test_bound_stderr": 0.23,
           "test_bound_reverse": -94.17, "seconds_total": 434.0}
    (folder / "models" / "new_results.json").write_text(json.dumps(new))
    (folder / "models" / "old_results.json").write_text(json.dumps(old))
    monkeypatch.setattr(nbm_results, "EXPERIMENTS", tmp_path)
    models = nbm_results.load_experiment("mnist_dbn")
    table = nbm_tables.dbn_table(models)
    new_row = next(line for line in table.splitlines() if line.startswith("| `new`"))
    old_row = next(line for line in table.splitlines() if line.startswith("| `old`"))
    assert "0, 50, 50" in new_row and "200.88 [200.45, 201.18] (42.4)" in new_row and "200.58 (33.5)" in new_row
    assert "**-93.97 ± 0.24** / -93.67" in new_row  # forward's log Z is the larger here
    assert "-93.74 ± 0.23 / **-94.17**" in old_row and "top RBM: 20" in old_row
    assert "none quoted" in new_row
    [new_model] = [m for m in models if m.name == "new"]
    assert new_model.provenance["commit"] == "beb0033"
    assert nbm_tables.dbn_conservative(new)[0] == min(new["test_ll"], new["test_ll_reverse"])


def test_a_published_dbn_figure_needs_its_source(tmp_path, monkeypatch):
    import nbm_results
    import nbm_tables

    folder = tmp_path / "mnist_dbn"
    (folder / "models").mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({"d": {"layer_sizes": [784, 500, 500, 2000]}}))
    monkeypatch.setattr(nbm_results, "EXPERIMENTS", tmp_path)
    [model] = nbm_results.load_experiment("mnist_dbn")
    (folder / "published.json").write_text(json.dumps({"value": -86.22}))  # no source: not shown
    assert nbm_tables.dbn_published_cell(model) == "none quoted"
    (folder / "published.json").write_text(json.dumps({"value": -86.22, "source": "a paper, table 2"}))
    assert nbm_tables.dbn_published_cell(model, short=True) == "-86.22 (SM2008)"
    assert "a paper, table 2" in nbm_tables.dbn_table([model])


def test_ladder_and_drift_tables_read_their_files(tmp_path, monkeypatch):
    import nbm_results
    import nbm_tables

    monkeypatch.setattr(nbm_results, "EXPERIMENTS", tmp_path)
    assert nbm_tables.drift_table().startswith(nbm_results.NOT_MEASURED.capitalize())
    assert nbm_tables.ladder_table().startswith(nbm_results.NOT_MEASURED.capitalize())
    (tmp_path / "tempering").mkdir()
    (tmp_path / "tempering" / "ladder_swap_rates.json").write_text(json.dumps({
        "fixed": {"betas": [1.0, 0.5, 0.1], "swap_rates": [0.0006, 0.02]},
        "adaptive": {"betas": [1.0, 0.8, 0.6, 0.1], "swap_rates": [0.2, 0.3, 0.9], "target": 0.25}}))
    ladder = nbm_tables.ladder_table()
    assert "0.0006 / 0.0103 / 0.0200" in ladder  # median of two rates: their mean
    assert "0.2000 / 0.2500 / 0.3000 (all but the hottest)" in ladder and "| 0.9000 |" in ladder
    (tmp_path / "trajectory_ais").mkdir()
    epochs = [{"epoch": e, "seconds_training": 2.0, "reference": {"logZ": 100.0 + e, "by": "exact"},
               "own:100:0.5:1e-4": {"logZ": 100.0 + e - 0.5 * e}} for e in range(4)]
    (tmp_path / "trajectory_ais" / "drift.json").write_text(json.dumps(
        {"compare": {"epochs": epochs, "seconds": {"own:100:0.5:1e-4": 8.0}}}))
    drift = nbm_tables.drift_table()
    row = next(line for line in drift.splitlines() if "own:100" in line)
    assert row.split(" | ")[1:] == ["-0.50", "-1.50", "-1.50", "2.0 |"]  # epochs 1 and 3, the worst, s per epoch
    (tmp_path / "trajectory_ais" / "drift.json").write_text(json.dumps(  # summarise.py's names
        {"demo": {"epochs": epochs, "variant_seconds": {"own:100:0.5:1e-4": 12.0}, "recipe": {"hidden": 200}},
         "command": "bash run_all.sh", "date": "2026-12-03"}))
    drift = nbm_tables.drift_table()
    assert next(line for line in drift.splitlines() if "own:100" in line).endswith(" | 3.0 |")
    assert "Training: hidden 200. Made with `bash run_all.sh`, 2026-12-03." in drift


def test_precision_table_reads_the_study_file(tmp_path, monkeypatch):
    import nbm_results
    import nbm_tables

    monkeypatch.setattr(nbm_results, "EXPERIMENTS", tmp_path)
    assert nbm_tables.precision_table().startswith(nbm_results.NOT_MEASURED.capitalize())
    (tmp_path / "precision_study").mkdir()
    runs = {"demo": {"float32": {"0": {"test_ll": -126.0, "test_ll_reverse": -126.5, "seconds": 400.0,
                                       "seconds_per_epoch": 12.0},
                                 "1": {"test_ll": -126.4, "test_ll_reverse": -126.6, "seconds": 420.0}},
                     "bfloat16": {"0": {"test_ll": -126.2, "test_ll_reverse": -126.3, "seconds": 300.0},
                                  "1": {"test_ll": None, "seconds": 310.0}}}}
    (tmp_path / "precision_study" / "precision.json").write_text(json.dumps(
        {"runs": runs, "verdict": {"demo": {"bfloat16_within_float32_spread": True}}, "command": "run.py",
         "date": "2026-12-03", "git_commit": "abcdef123", "note": "Timed beside a test run."}))
    table = nbm_tables.precision_table()
    rows = [line for line in table.splitlines() if line.startswith("| float32") or line.startswith("| bfloat16")]
    assert rows[0].split(" | ")[1:] == ["-126.00", "-126.40", "-126.20", "0.40", "-126.55", "12.0", "410 |"]
    assert rows[1].split(" | ")[1:] == ["-126.20", "–", "-126.20", "–", "-126.30", "not recorded", "305 |"]
    assert table.rstrip().endswith("Timed beside a test run.")
    assert "bfloat16's mean (1 seed) lies within float32's run-to-run spread" in table
    assert "Made with `run.py`, 2026-12-03, commit abcdef1." in table


def test_a_step_schedule_of_equal_factors_reads_as_its_rule():
    import nbm_tables

    halvings = [[0, 0.001], [60, 0.0005], [70, 0.00025], [80, 0.000125], [90, 0.0000625], [100, 0.00003125],
                [110, 0.000015625]]
    assert nbm_tables._schedule({"schedule": {"lr": halvings}}, "lr") == (
        "0.001; halved every 10 epochs from epoch 60 to epoch 110, to 1.5625e-05")
    tenths = [[0, 1.0], [5, 0.1], [10, 0.01], [15, 0.001]]
    assert nbm_tables._schedule({"schedule": {"lr": tenths}}, "lr") == (
        "1.0; times 0.1 every 5 epochs from epoch 5 to epoch 15, to 0.001")
    uneven = [[0, 0.01], [10, 0.005], [30, 0.0025], [40, 0.00125]]  # the gaps differ: each step
    assert nbm_tables._schedule({"schedule": {"lr": uneven}}, "lr") == (
        "0.01; 0.005 from epoch 10; 0.0025 from epoch 30; 0.00125 from epoch 40")
    two = [[0, 0.01], [10, 0.005], [20, 0.0025]]  # too few steps for a rule
    assert nbm_tables._schedule({"schedule": {"lr": two}}, "lr") == "0.01; 0.005 from epoch 10; 0.0025 from epoch 20"
