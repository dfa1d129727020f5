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
