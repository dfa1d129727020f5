"""Read the result files shipped beside the models of ``experiments/`` and render them as tables.

Nothing here holds a measured number: every figure of every table comes from a file of
``experiments/<experiment>/models/`` (``*_results.json``, ``*_config.json``, ``*_log.csv``,
``*_logz*.json``, ``*_raise*.json``, ``*_estimator_check.jsonl``; the best models' files under
``natural_bm/pretrained/``), from the experiment's YAML config, from a file the experiment's scripts
write (``experiment_file``), or from its ``provenance.json`` (commit, machine, command, wall time of
each run). A field no file records is
shown as "not recorded"; a model whose files have not appeared yet (still training) as "training; not
yet measured". Published numbers live in ``published.json`` beside this file, with their source,
and are only ever put in a column of their own.

Used by the Sphinx extension ``results_pages`` (the results pages, the home page's table) and by
``readme_table.py`` (the README's headline table). No Sphinx import here.

Which log Z a test figure uses
------------------------------
A model can have several AIS estimates of log Z: forward and reverse, on one or two annealing paths
(which layers are annealed; the others are summed out), at one or more numbers of betas. An estimate
is *superseded* by one on the same path with more betas (a longer anneal of the same thing). Of the
remaining estimates the **largest** log Z is the one quoted: it gives the lowest, most conservative
test log-likelihood, since forward AIS under-estimates log Z in expectation. A model's figure is
*believable* when, on at least one annealing path, forward and reverse AIS agree within
``BELIEVABLE_GAP`` nats with at least ``MIN_ESS`` effective runs each; otherwise the table says why not.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
HERE = Path(__file__).resolve().parent
NOT_RECORDED = "not recorded"
PENDING = "training; not yet measured"
NOT_MEASURED = "not yet measured"
BELIEVABLE_GAP = 1.0  # nats: forward and reverse AIS must agree this well on one path (issue #30's bar)
MIN_ESS = 10.0  # effective runs below which natural_bm's AIS itself warns (estimators.ais.MIN_EFFECTIVE_SAMPLE_SIZE)
DASH = "–"


def _min_ess() -> float:
    try:
        from natural_bm.estimators.ais import MIN_EFFECTIVE_SAMPLE_SIZE
    except Exception:  # the estimators being refactored must not break the documentation
        return MIN_ESS
    return float(MIN_EFFECTIVE_SAMPLE_SIZE)


# -- reading files ----------------------------------------------------------------------------------

def read_json(path: Path) -> dict:
    """One JSON object, or JSON lines merged into one dict (later lines win)."""
    text = path.read_text(encoding="utf-8").strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = {}
        for line in text.splitlines():
            if line.strip():
                value.update(json.loads(line))
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_log(path: Path) -> list[dict[str, float]]:
    """The rows of a ``CSVLogger`` file, numbers as floats (empty or 'nan' cells as NaN)."""
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({k: _float(v) for k, v in row.items() if k is not None})
    return rows


def _float(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_yaml(path: Path) -> dict:
    import yaml

    value = yaml.safe_load(path.read_text(encoding="utf-8"))
    return value if isinstance(value, dict) else {}


def published() -> dict:
    """The published numbers (``published.json``): key -> {value, estimator, model, source, ...}."""
    return read_json(HERE / "published.json")


def provenance(experiment: str) -> dict:
    path = EXPERIMENTS / experiment / "provenance.json"
    return read_json(path) if path.exists() else {}


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# -- formatting -------------------------------------------------------------------------------------

def num(value, digits: int = 2, signed: bool = False) -> str:
    """A number as text; None/NaN as "not recorded"; -inf as "-inf"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_RECORDED
    if isinstance(value, float) and math.isinf(value):
        return "-inf" if value < 0 else "inf"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def pm(mean, stderr, digits: int = 2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return NOT_RECORDED
    if stderr is None or (isinstance(stderr, float) and math.isnan(stderr)):
        return num(mean, digits)
    return f"{mean:.{digits}f} ± {stderr:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def layer_name(i: int, n_layers: int) -> str:
    if i == 0:
        return "v"
    return "h" if n_layers == 2 else f"h{i}"


# -- one model --------------------------------------------------------------------------------------

@dataclass
class Estimate:
    """One AIS estimate of log Z (nats)."""

    direction: str  # "forward" or "reverse"
    annealed: tuple[int, ...]
    betas: int | None
    runs: int | None
    log_z: float
    lo: float | None
    hi: float | None
    ess: float | None
    source: str
    superseded: bool = False

    def path(self, n_layers: int) -> str:
        return ", ".join(layer_name(i, n_layers) for i in self.annealed)


@dataclass
class Model:
    """What the files of one shipped (or expected) model say."""

    experiment: str
    name: str
    results: dict | None = None
    config: dict | None = None
    config_file: str | None = None
    log: list[dict[str, float]] = field(default_factory=list)
    extras: list[tuple[str, dict]] = field(default_factory=list)  # (file name, logz JSON)
    checks: dict | None = None  # estimator_check output
    raises: list[tuple[str, dict]] = field(default_factory=list)  # (file name, RAISE JSON), most betas first
    weights: Path | None = None
    files: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """No result file (yet)."""
        return self.results is None

    @property
    def missing_text(self) -> str:
        """What to show instead of a number while there is no result file: a run that finished but
        whose files were not shipped, or one still training (its provenance has no commit or date yet, or
        says ``"status": "training"``: started, with its commit and start recorded)."""
        if self.provenance.get("status") == "training":
            return PENDING
        if self.provenance.get("commit") or self.provenance.get("date"):
            return f"{NOT_RECORDED} (result files not shipped)"
        return PENDING

    @cached_property
    def provenance(self) -> dict:
        """The model's entry of ``provenance.json``; a field it leaves empty (null) is taken from the
        ``provenance`` that ``natural-bm train`` writes into ``results.json`` where there is one."""
        entry = dict(provenance(self.experiment).get(self.name, {}))
        run = (self.results or {}).get("provenance") or {}
        for key, run_key in (("commit", "git_commit"), ("command", "command"), ("wall_time_s", "wall_time_s")):
            if entry.get(key) is None and run.get(run_key) is not None:
                entry[key] = run[run_key][:7] if key == "commit" else run[run_key]
        if entry.get("date") is None and run.get("started"):
            entry["date"] = str(run["started"])[:10]
        return entry

    @cached_property
    def layer_sizes(self) -> list[int] | None:
        model = (self.config or {}).get("model", {})
        if model.get("layer_sizes"):
            return [int(n) for n in model["layer_sizes"]]
        if "n_hidden" in model:
            return [int(self.provenance.get("n_visible", 784)), int(model["n_hidden"])]
        sizes = self.provenance.get("layer_sizes")
        return [int(n) for n in sizes] if sizes else None

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes or [0, 0])

    @property
    def deep(self) -> bool:
        return self.n_layers > 2

    @property
    def architecture(self) -> str:
        return "-".join(str(n) for n in self.layer_sizes) if self.layer_sizes else NOT_RECORDED

    def _default_annealed(self) -> tuple[int, ...]:
        """The layers AIS anneals by default (``estimators.ais_steps.annealed_parity``): the visible
        layer of an RBM, the parity with fewer units of a deeper model (odd on ties)."""
        sizes = self.layer_sizes or [0, 0]
        parity = (self.config or {}).get("ais", {}).get("parity", "auto")
        if parity in (None, "auto"):
            if len(sizes) == 2:
                parity = 0
            else:
                even = sum(sizes[0::2])
                odd = sum(sizes[1::2])
                parity = 0 if even < odd else 1
        return tuple(range(int(parity), len(sizes), 2))

    def _default_betas(self) -> int | None:
        n = (self.config or {}).get("ais", {}).get("n_betas")
        if n:
            return int(n)
        try:
            from natural_bm.estimators import default_betas
        except Exception:
            return None
        return int(len(default_betas()))

    @cached_property
    def estimates(self) -> list[Estimate]:
        out: list[Estimate] = []
        if self.results:
            r = self.results
            annealed, betas = self._default_annealed(), self._default_betas()
            runs = (self.config or {}).get("ais", {}).get("n_runs")
            if "logZ" in r:
                out.append(Estimate("forward", annealed, betas, runs, r["logZ"], r.get("logZ_lo"), r.get("logZ_hi"),
                                    r.get("ais_ess"), f"{self.name}_results.json"))
            if "logZ_reverse" in r:
                out.append(Estimate("reverse", annealed, betas, runs, r["logZ_reverse"], None, None,
                                    r.get("ais_ess_reverse"), f"{self.name}_results.json"))
        for source, e in self.extras:
            annealed = tuple(e["annealed_layers"]) if e.get("annealed_layers") else self._default_annealed()
            betas, runs = e.get("betas"), e.get("runs")
            if "logZ" in e:
                out.append(Estimate("forward", annealed, betas, runs, e["logZ"], e.get("logZ_lo"), e.get("logZ_hi"),
                                    e.get("ais_ess"), source))
            if "logZ_reverse" in e:
                out.append(Estimate("reverse", annealed, betas, runs, e["logZ_reverse"], None, None,
                                    e.get("ais_ess_reverse"), source))
        for est in out:
            longer = [o for o in out if o.annealed == est.annealed and (o.betas or 0) > (est.betas or 0)]
            est.superseded = bool(longer)
        return out

    @property
    def current(self) -> list[Estimate]:
        return [e for e in self.estimates if not e.superseded]

    @property
    def quoted(self) -> Estimate | None:
        """The largest current log Z estimate (the conservative one)."""
        current = [e for e in self.current if math.isfinite(e.log_z)]
        return max(current, key=lambda e: e.log_z) if current else None

    @property
    def believable(self) -> tuple[bool, str]:
        """(whether forward and reverse AIS agree on some path, the reason in words)."""
        if self.pending:
            return False, self.missing_text
        min_ess = _min_ess()
        paths = sorted({e.annealed for e in self.current})
        best_gap = None
        for annealed in paths:
            fwd = [e for e in self.current if e.annealed == annealed and e.direction == "forward"]
            rev = [e for e in self.current if e.annealed == annealed and e.direction == "reverse"]
            for f in fwd:
                for r in rev:
                    gap = abs(r.log_z - f.log_z)
                    ok_ess = (f.ess or 0) >= min_ess and (r.ess or 0) >= min_ess
                    if ok_ess and gap <= BELIEVABLE_GAP:
                        return True, ""
                    best_gap = gap if best_gap is None else min(best_gap, gap)
        if best_gap is None:
            if self.estimates and not any(e.direction == "reverse" for e in self.estimates):
                ess = [e.ess for e in self.current if e.ess is not None]
                if ess and min(ess) < min_ess:
                    return False, f"forward AIS only, with {min(ess):.1f} effective runs"
                return False, "forward AIS only: no bracket"
            return False, "no AIS estimate recorded"
        low = [e for e in self.current if (e.ess or 0) < min_ess]
        why = f"forward and reverse AIS {best_gap:.1f} nats apart"
        if low:
            why += f", {min(e.ess or 0 for e in low):.1f} effective runs"
        return False, why

    @property
    def spread(self) -> float | None:
        values = [e.log_z for e in self.current if math.isfinite(e.log_z)]
        return max(values) - min(values) if len(values) > 1 else None

    # the data terms: mean over test images of log p*(v) (or its bound), so that any log Z gives a figure
    def _term(self, key: str) -> tuple[float, float, float] | None:
        """(mean log p*(v) term, its stderr, the log Z it came with) for ``key`` = "test_ll" (exact free
        energy for an RBM, the mean-field bound for a DBM) or "test_ll_importance"."""
        sources = [(self.results or {}, "logZ")] + [(e, "logZ") for _, e in self.extras]
        for data, lz in sources:
            if key in data and lz in data and data[key] is not None and math.isfinite(data[lz]):
                return data[key] + data[lz], data.get(f"{key}_stderr"), data[lz]
        return None

    def figure(self, key: str = "test_ll") -> tuple[float, float] | None:
        """(test figure with the quoted log Z, stderr), or None."""
        term, quoted = self._term(key), self.quoted
        if term is None or quoted is None:
            return None
        return term[0] - quoted.log_z, term[1]

    def figure_range(self, key: str = "test_ll") -> tuple[float, float] | None:
        term = self._term(key)
        values = [e.log_z for e in self.current if math.isfinite(e.log_z)]
        if term is None or not values:
            return None
        return term[0] - max(values), term[0] - min(values)

    @property
    def last_row(self) -> dict[str, float]:
        return self.log[-1] if self.log else {}

    def last(self, key: str) -> float | None:
        """The last non-NaN value of a log column."""
        for row in reversed(self.log):
            value = row.get(key)
            if value is not None and not math.isnan(value):
                return value
        return None


def _find_config(experiment: str, name: str) -> tuple[dict | None, str | None]:
    """The config a model was trained with: ``models/<name>_config.json`` (as run, every default
    filled in), else the experiment's ``<name>.yaml`` with the library's defaults filled in."""
    folder = EXPERIMENTS / experiment
    for path in (folder / "models" / f"{name}_config.json", folder / f"{name}.yaml", folder / f"{name}.yml"):
        if path.exists():
            if path.suffix == ".json":
                return read_json(path), relative(path)
            return _with_defaults(read_yaml(path)), relative(path)
    return None, None


def _with_defaults(raw: dict) -> dict:
    for module in ("natural_bm.run", "natural_bm.runner"):
        try:
            resolve = importlib.import_module(module).resolve_config
            return resolve(raw)
        except Exception:  # the runner is being split into natural_bm.run: take whichever resolves
            continue
    return raw


def load_model(experiment: str, name: str) -> Model:
    """Everything the files say about ``name`` in ``experiments/<experiment>/models/``. The model's
    provenance entry may name its files (``results_file``, ``log_file``, ``weights_file``, or a
    ``results_glob`` for a model whose file name is not known yet)."""
    folder = EXPERIMENTS / experiment
    models = folder / "models"
    model = Model(experiment, name)
    entry = model.provenance
    results = _first_existing([models / entry["results_file"], folder / entry["results_file"]]
                              if entry.get("results_file") else [models / f"{name}_results.json"])
    if results is None and entry.get("results_glob"):
        found = sorted(folder.rglob(entry["results_glob"]))
        results = found[0] if found else None
    if results is not None and results.suffix == ".json":
        model.results = read_json(results)
        model.files.append(relative(results))
    elif results is not None:
        model.results = {"_text": results.read_text(encoding="utf-8")}
        model.files.append(relative(results))
    model.__dict__.pop("provenance", None)  # read again: results.json may fill in what provenance.json leaves empty
    model.config, model.config_file = _find_config(experiment, name)
    log = models / entry.get("log_file", f"{name}_log.csv")
    if log.exists():
        model.log = read_log(log)
        model.files.append(relative(log))
    for extra in sorted(models.glob(f"{name}_logz*.json")):
        model.extras.append((extra.name, read_json(extra)))
        model.files.append(relative(extra))
    model.raises = raise_files(models, name)
    model.files += [relative(path) for path in _raise_paths(models, name)]
    checks = sorted(models.glob(f"{name}_estimator_check.json*"))
    if checks:
        model.checks = read_json(checks[0])
        model.files.append(relative(checks[0]))
    weights_name = entry.get("weights_file", f"{name}.pt")
    # the best models ship inside the package (natural_bm.pretrained), the others under experiments/
    model.weights = _first_existing([models / weights_name, REPO / "natural_bm" / "pretrained" / weights_name])
    return model


PRETRAINED = REPO / "natural_bm" / "pretrained"
RAISE_FILE = "{name}_raise.json"  # what scripts/raise_shipped.py writes beside a model file


def _raise_paths(models: Path, name: str) -> list[Path]:
    paths = {p.resolve(): p for folder in (models, PRETRAINED) for p in folder.glob(f"{name}_raise*.json")}
    return sorted(paths.values())


def raise_files(models: Path, name: str) -> list[tuple[str, dict]]:
    """The RAISE results of a model (``scripts/raise_shipped.py``: ``<name>_raise*.json`` beside its
    weights, in ``models/`` or ``natural_bm/pretrained/``), the most betas first."""
    found = [(path.name, read_json(path)) for path in _raise_paths(models, name)]
    return sorted(found, key=lambda f: (-(f[1].get("betas") or 0), -(f[1].get("rows") or 0), f[0]))


def experiment_file(experiment: str, name: str) -> dict | None:
    """A JSON file an experiment's script writes into its folder (``experiments/<experiment>/<name>``),
    or None while it does not exist."""
    path = EXPERIMENTS / experiment / name
    return read_json(path) if path.exists() else None


def expected_files(experiment: str) -> list[Path]:
    """Files the pages of an experiment read that do not exist yet (a model still training, a RAISE
    run still going): the pages depend on them, so their appearance rebuilds the pages."""
    out = []
    folder = EXPERIMENTS / experiment / "models"
    for name in discover(experiment):
        entry = provenance(experiment).get(name, {})
        results = folder / entry.get("results_file", f"{name}_results.json")
        if not results.exists():
            out.append(results)
    return out


def _first_existing(paths: list[Path]) -> Path | None:
    for path in paths:
        if path.exists():
            return path
    return None


def discover(experiment: str) -> list[str]:
    """Model names of an experiment: those in its provenance.json (in that order), then any other
    ``models/<name>_results.json``."""
    names = [n for n in provenance(experiment) if not n.startswith("_")]
    folder = EXPERIMENTS / experiment / "models"
    claimed = {entry.get("results_file") for entry in provenance(experiment).values() if isinstance(entry, dict)}
    for path in sorted(folder.glob("*_results.json")):
        if path.name in claimed:
            continue
        name = path.name[: -len("_results.json")]
        if name not in names:
            names.append(name)
    return names


def load_experiment(experiment: str) -> list[Model]:
    return [load_model(experiment, name) for name in discover(experiment)]
