"""Sphinx extension: the tables and figures of the results pages, read from the shipped result files.

Directives (MyST: ```` ```{results-table} dbm_mnist_sh2009 likelihood ```` ):

* ``results-table EXPERIMENT KIND``: a table of ``nbm_tables`` (KIND: likelihood, estimates, recipe,
  monitors, provenance, checks, dbn, classification, exact, text, raise; ladder, drift and precision
  read one file of the experiment's folder, ``ladder_swap_rates.json``, ``drift.json`` and ``precision.json``);
* ``headline-table``: the home page's table of the best shipped models (the README's, too);
* ``results-figure EXPERIMENT KIND``: a figure drawn from the training logs or the estimates
  (KIND: curves, estimates, accuracy, ladder), written under ``docs/results/generated/`` when the page is read.

Every file a table or figure reads is recorded as a dependency of its page, so a new or changed
result file rebuilds the page, and a model whose files appear (the 3-layer DBM, the new DBN) turns
from "training; not yet measured" into numbers by itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import nbm_results as R
import nbm_tables as T
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

TABLES = {
    "likelihood": T.likelihood_table,
    "estimates": T.estimates_table,
    "recipe": T.recipe_table,
    "monitors": T.monitors_table,
    "provenance": T.provenance_table,
    "checks": T.estimator_check_table,
    "dbn": T.dbn_table,
    "classification": T.classification_table,
    "exact": T.exact_table,
    "text": T.text_result,
    "quick-rows": T.quick_rows_table,
    "dropped": T.dropped_list,
    "raise": T.raise_table,
    "ladder": T.ladder_table,
    "drift": T.drift_table,
    "precision": T.precision_table,
}


def _models(experiment: str, only: str | None, layers: str | None = None) -> list[R.Model]:
    """The experiment's models; ``only``: comma-separated names; ``layers``: an architecture such as
    ``784-500-1000`` (a model without a config or provenance entry saying its sizes is left out)."""
    models = R.load_experiment(experiment)
    if only:
        wanted = [n.strip() for n in only.split(",")]
        models = [m for m in models if m.name in wanted]
    if layers:
        models = [m for m in models if m.architecture == layers.strip()]
    return models


class _Base(SphinxDirective):
    def _depend(self, experiment: str | None) -> None:
        folders = [R.EXPERIMENTS / experiment] if experiment else [R.EXPERIMENTS / e for e in
                                                                    ("rbm_mnist_sm2008", "dbm_mnist_sh2009",
                                                                     "mnist_dbn", "mnist_classification")]
        for folder in folders:
            for path in list(folder.glob("*.json")) + list(folder.glob("*.yaml")) + list(folder.glob("models/*")):
                if path.suffix in (".json", ".jsonl", ".csv", ".yaml", ".md"):
                    self.env.note_dependency(str(path))
            # a file not written yet (a model still training): the page is read again until it appears
            for path in R.expected_files(folder.name) if (folder / "provenance.json").exists() else ():
                self.env.note_dependency(str(path))
        for path in R.PRETRAINED.glob("*.json"):  # the best models' results and RAISE files
            self.env.note_dependency(str(path))
        self.env.note_dependency(str(R.HERE / "published.json"))

    def _parse(self, markdown: str) -> list[nodes.Node]:
        container = nodes.container(classes=["nbm-results"])
        self.state.nested_parse(self._lines(markdown), self.content_offset, container)
        return [container]

    def _lines(self, text: str):
        from docutils.statemachine import StringList

        return StringList(text.splitlines(), source=self.env.docname)


class ResultsTable(_Base):
    """A table of an experiment's shipped results."""

    required_arguments = 2
    option_spec = {"models": directives.unchanged, "layers": directives.unchanged}

    def run(self):
        experiment, kind = self.arguments
        if kind not in TABLES:
            raise self.error(f"results-table: unknown kind {kind!r}; one of {', '.join(TABLES)}")
        self._depend(experiment)
        if kind == "quick-rows":
            self.env.note_dependency(str(R.REPO / "scripts" / "quick_rows.json"))
            return self._parse(T.quick_rows_table())
        if kind in ("ladder", "drift"):  # one file of the experiment's folder, not its models
            name = T.LADDER_FILE if kind == "ladder" else T.DRIFT_FILE
            self.env.note_dependency(str(R.EXPERIMENTS / experiment / name))
            return self._parse(TABLES[kind]())
        markdown = TABLES[kind](_models(experiment, self.options.get("models"), self.options.get("layers")))
        return self._parse(markdown)


class HeadlineTable(_Base):
    """The best shipped models with the published number beside each (the README's table)."""

    def run(self):
        self._depend(None)
        prefix = "" if self.env.docname.startswith("results/") else "results/"
        table = T.headline_table(lambda e: f"[{T.EXPERIMENT_TITLES.get(e, e)}]({prefix}{T.PAGES[e]}.md)")
        return self._parse(table + "\n" + T.headline_note() + "\n")


class BenchmarkTables(_Base):
    """The recorded benchmark tables (``docs/benchmarks/*.json``), or the table of the scripts."""

    optional_arguments = 1
    option_spec = {"script": directives.unchanged}

    def run(self):
        folder = R.REPO / "docs" / "benchmarks"
        for path in folder.glob("*.json"):
            self.env.note_dependency(str(path))
        for path in (R.REPO / "scripts").glob("*.py"):
            self.env.note_dependency(str(path))
        if self.arguments and self.arguments[0] == "scripts":
            return self._parse(T.scripts_table())
        return self._parse(T.benchmark_tables(self.options.get("script")))


class ResultsFigure(_Base):
    """A figure drawn from an experiment's logs or estimates."""

    required_arguments = 2
    option_spec = {"models": directives.unchanged, "layers": directives.unchanged, "alt": directives.unchanged}

    def run(self):
        experiment, kind = self.arguments
        self._depend(experiment)
        if kind == "ladder":
            self.env.note_dependency(str(R.EXPERIMENTS / experiment / T.LADDER_FILE))
        models = _models(experiment, self.options.get("models"), self.options.get("layers"))
        out = Path(self.env.srcdir) / "results" / "generated"
        out.mkdir(parents=True, exist_ok=True)
        suffix = "".join(f"_{v}" for v in (self.options.get("layers"), self.options.get("models")) if v)
        path = out / f"{experiment}_{kind}{suffix.replace(',', '_').replace(' ', '')}.png"
        drawn = FIGURES[kind](models, path)
        if not drawn:
            return self._parse(f"*Figure not drawn: {R.NOT_RECORDED} (no log or estimate in the files yet).*\n")
        rel = Path("generated") / path.name if self.env.docname.startswith("results/") else path.relative_to(
            Path(self.env.srcdir))
        alt = self.options.get("alt", f"{experiment} {kind}")
        return self._parse(f"![{alt}]({rel.as_posix()})\n")


# -- figures ----------------------------------------------------------------------------------------


def _chain_offsets(models: list[R.Model]) -> dict[str, int]:
    """Epoch offsets that put a run continued from another (``model.init_from``) after it."""
    by_name = {m.name: m for m in models}
    offsets: dict[str, int] = {}

    def offset(m: R.Model, seen=()) -> int:
        if m.name in offsets:
            return offsets[m.name]
        parent = str(((m.config or {}).get("model") or {}).get("init_from") or "")
        parent_name = Path(parent).stem if parent else ""
        value = 0
        if parent_name in by_name and parent_name not in seen:
            p = by_name[parent_name]
            value = offset(p, (*seen, m.name)) + len(p.log)
        offsets[m.name] = value
        return value

    for m in models:
        offset(m)
    return offsets


def _series(m: R.Model, offset: int) -> list[tuple[str, int, list[dict[str, float]]]]:
    """(label, epoch offset, rows) of a model's log: one series per RBM of a greedy stack whose log has an
    ``rbm`` column (a DBN trained by ``natural-bm train``), else the whole log."""
    if not any("rbm" in r and not math.isnan(r["rbm"]) for r in m.log):
        return [(m.name, offset, m.log)]
    sizes = m.layer_sizes or []
    out = []
    for i in sorted({int(r["rbm"]) for r in m.log if not math.isnan(r.get("rbm", math.nan))}):
        shape = f" ({sizes[i]}-{sizes[i + 1]})" if i + 1 < len(sizes) else ""
        out.append((f"{m.name}, RBM {i}{shape}", 0, [r for r in m.log if r.get("rbm") == i]))
    return out


def draw_curves(models: list[R.Model], path: Path) -> bool:
    """Validation reconstruction loss and pseudo-log-likelihood per epoch (the training rows' where a
    run has no validation set, dotted), continued runs placed after the run they start from, each RBM of
    a greedy stack a curve of its own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logged = [m for m in models if m.log]
    if not logged:
        return False
    offsets = _chain_offsets(logged)
    series = [s for m in logged for s in _series(m, offsets[m.name])]
    keys = [("val_loss", "loss", "reconstruction loss"), ("val_pll", "pll", "pseudo-log-likelihood")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for ax, (key, fallback, label) in zip(axes, keys, strict=True):
        kinds = set()
        for name, offset, rows in series:
            column = key if any(not math.isnan(r.get(key, math.nan)) for r in rows) else fallback
            xs = [offset + int(r["epoch"]) for r in rows if not math.isnan(r.get(column, math.nan))]
            ys = [r[column] for r in rows if not math.isnan(r.get(column, math.nan))]
            if xs:
                kinds.add(column == key)
                style = "-" if column == key else ":"
                ax.plot(xs, ys, style, lw=1.2, label=f"{name}{'' if column == key else ' (train)'}")
        which = {frozenset({True}): ", validation", frozenset({False}): ", training rows"}.get(frozenset(kinds), "")
        ax.set_xlabel("epoch (a continued run starts where its init ended)")
        ax.set_ylabel(f"{label}{which}\n(nats per image)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def draw_estimates(models: list[R.Model], path: Path) -> bool:
    """Each model's test figure with every current log Z estimate (the spread is the AIS uncertainty),
    mean-field bound and importance-sampled, beside the published number of the same estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in models if not m.pending and m.believable[0]]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.6), constrained_layout=True)
    labelled: set[str] = set()
    for i, m in enumerate(reversed(rows)):
        for key, colour, label in (("test_ll", "tab:blue", "mean-field bound / exact free energy"),
                                   ("test_ll_importance", "tab:orange", "importance-sampled")):
            term = m._term(key)
            if term is None:
                continue
            values = [term[0] - e.log_z for e in m.current if math.isfinite(e.log_z)]
            ax.plot([min(values), max(values)], [i, i], color=colour, lw=8, alpha=0.3, solid_capstyle="butt")
            ax.plot(values, [i] * len(values), "|", color=colour, ms=12, mew=2,
                    label=None if label in labelled else label)
            labelled.add(label)
    keys = {T.published_key(m) for m in rows} - {None}
    for key in sorted(keys):
        p = R.published()[key]
        ax.axvline(p["value"], color="k", ls="--", lw=1)
        ax.text(p["value"], len(rows) - 0.4, f" {p['short']} {p['value']:.2f}", fontsize=8, va="bottom")
    ax.set_yticks(range(len(rows)), [m.name for m in reversed(rows)], fontsize=8)
    ax.set_xlabel("test log-likelihood or bound (nats per image), one tick per log Z estimate")
    ax.set_ylim(-0.7, len(rows) + 0.2)
    ax.grid(axis="x", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8, loc="lower left")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def draw_accuracy(models: list[R.Model], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logged = [m for m in models if any("val_accuracy" in r for r in m.log)]
    if not logged:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.4), constrained_layout=True)
    for m in logged:
        ax.plot([r["epoch"] for r in m.log], [r["val_accuracy"] for r in m.log], "-o", ms=3, label=m.name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def draw_ladder(_models: list[R.Model], path: Path) -> bool:
    """Swap rate of each pair of neighbouring rungs against the colder rung's inverse temperature, on the
    fixed geometric ladder and on the self-tuning one (``experiments/tempering/ladder_swap_rates.json``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    data = R.experiment_file("tempering", T.LADDER_FILE)
    if data is None or not all(data.get(key) for key, _ in T.LADDERS):
        return False
    fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    band = data["adaptive"].get("band")
    if band and len(band) == 2:
        ax.axhspan(band[0], band[1], color="tab:green", alpha=0.12, label=f"target band [{band[0]}, {band[1]}]")
    for (key, label), style in zip(T.LADDERS, ("o-", "s-"), strict=True):
        lad = data[key]
        rates = [max(r, 1e-4) for r in lad["swap_rates"]]
        ax.plot(lad["betas"][:-1], rates, style, ms=4, lw=1.2,
                label=f"{label.split(' (')[0]} ladder, {len(lad['betas'])} rungs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ticks = [1.0, 0.7, 0.5, 0.3, 0.2, 0.15, 0.1]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("inverse temperature of the pair's colder rung (model at 1, left)")
    ax.set_ylabel("swap rate (accepted / proposed)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


FIGURES = {"curves": draw_curves, "estimates": draw_estimates, "accuracy": draw_accuracy, "ladder": draw_ladder}


def setup(app):
    app.add_directive("results-table", ResultsTable)
    app.add_directive("headline-table", HeadlineTable)
    app.add_directive("results-figure", ResultsFigure)
    app.add_directive("benchmark-tables", BenchmarkTables)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
