"""Markdown tables of the results pages, the home page and the README, rendered from the result files.

Every function returns Markdown text; every number in it comes from ``nbm_results`` (the files
shipped beside the models), from ``published.json`` (in a column of its own), or is derived from
those (a test figure with another of the model's log Z estimates, a difference). No Sphinx import.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import nbm_results as R
from nbm_results import DASH, NOT_RECORDED, Model, markdown_table, num, pm

PAGES = {  # experiment folder -> its results page (docs/results/<page>.md)
    "rbm_mnist_sm2008": "sm2008_rbm",
    "dbm_mnist_sh2009": "sh2009_dbm",
    "mnist_dbn": "dbn",
    "tempering": "tempering",
    "trajectory_ais": "trajectory",
    "digits_gaussian": "gaussian",
    "mnist_classification": "classification",
    "mnist_features": "features",
}

EXPERIMENT_TITLES = {
    "rbm_mnist_sm2008": "SM2008 RBMs",
    "dbm_mnist_sh2009": "SH2009 DBMs",
    "mnist_dbn": "the DBN",
    "tempering": "parallel tempering",
    "trajectory_ais": "trajectory AIS",
    "digits_gaussian": "Gaussian units",
    "mnist_classification": "classification",
    "mnist_features": "features",
}

# -- pieces -----------------------------------------------------------------------------------------


def model_cell(m: Model) -> str:
    return f"`{m.name}`"


def weights_cell(m: Model) -> str:
    """Whether the model's weights ship, and where; "dropped" for a model whose weights were removed
    on purpose (its provenance entry says why; the results page lists the reasons)."""
    if m.pending:
        return DASH
    if m.weights is None:
        return "dropped (weights removed)" if m.provenance.get("dropped") else "weights not shipped"
    where = "`natural_bm.pretrained`" if "pretrained" in m.weights.parts else "`models/`"
    if m.provenance.get("dropped"):
        return f"dropped (weights still in {where})"
    return f"kept, in {where}"


def dropped_list(models: list[Model]) -> str:
    """The models whose weights are dropped, with the reason from their provenance entry."""
    items = [f"- `{m.name}`: {m.provenance['dropped']}" + (" (its weights are still in the tree)" if m.weights else "")
             for m in models if m.provenance.get("dropped")]
    return "\n".join(items) + "\n" if items else f"{NOT_RECORDED}\n"


def binarisation(config: dict | None) -> str:
    """How the config binarised the training and the test data, in words."""
    if not config:
        return NOT_RECORDED
    data = config.get("data", {})
    name = data.get("name", "mnist")
    if name != "mnist":
        return f"{name}, `kind: {data.get('kind', NOT_RECORDED)}`"
    kind, eval_kind = data.get("kind", "probability"), data.get("eval_kind", data.get("kind", "probability"))
    words = {"stochastic": "binarised afresh every minibatch", "sampled": "binarised once (fixed seed)",
             "probability": "grey levels", "threshold": "thresholded at 0.5"}
    return f"train {words.get(kind, kind)}; test {words.get(eval_kind, eval_kind)}"


def agreement_cell(m: Model) -> str:
    ok, why = m.believable
    n = len([e for e in m.current if math.isfinite(e.log_z)])
    if ok:
        spread = m.spread
        return f"yes: {n} estimates within {spread:.2f} nats" if spread is not None else "yes"
    return f"**no**: {why}"


def quoted_cell(m: Model) -> str:
    q = m.quoted
    if q is None:
        return m.missing_text if m.pending else NOT_RECORDED
    return f"{q.log_z:.2f} ({q.direction}, anneal {q.path(m.n_layers)}, {num(q.betas)} betas)"


def figure_cell(m: Model, key: str = "test_ll", bold: bool = False) -> str:
    if m.pending:
        return m.missing_text
    value = m.figure(key)
    if value is None:
        return NOT_RECORDED
    text = pm(*value)
    ok, _ = m.believable
    if not ok:
        return f"{text} (not believable)"
    return f"**{text}**" if bold else text


def range_cell(m: Model, key: str = "test_ll") -> str:
    r = m.figure_range(key)
    if r is None:
        return m.missing_text if m.pending else NOT_RECORDED
    return f"{r[0]:.2f} to {r[1]:.2f}" if abs(r[1] - r[0]) >= 0.005 else f"{r[0]:.2f}"


def importance_k(m: Model) -> int | None:
    k = (m.config or {}).get("ais", {}).get("importance_samples")
    if k:
        return int(k)
    for _, e in m.extras:
        if e.get("importance_samples"):
            return int(e["importance_samples"])
    return None


def published_cell(key: str | None, short: bool = False) -> str:
    if not key:
        return DASH
    p = R.published().get(key)
    if not p:
        return DASH
    return f"{p['value']:.2f} ({p['short']})" if short else f"{p['value']:.2f} ({p['short']}, {p['estimator']})"


def published_key(m: Model) -> str | None:
    """The published number measured on the same model and by the same estimator as our column."""
    sizes = m.layer_sizes
    if sizes == [784, 500] and str((m.config or {}).get("training", {}).get("algorithm", "")) == "cd":
        return "sm2008_rbm500_cd25"
    if sizes == [784, 500, 1000]:
        return "sh2009_dbm_784_500_1000"
    if sizes == [784, 500, 500, 1000]:
        return "sh2009_dbm_784_500_500_1000"
    return None


# -- the results pages --------------------------------------------------------------------------


def likelihood_table(models: list[Model]) -> str:
    """One row per model: the quoted test figures, the log Z they use, whether AIS agrees with itself."""
    deep = any(m.deep for m in models)
    if deep:
        header = ["model", "test mean-field bound (nats)", "test importance-sampled (nats)",
                  "range over the log Z estimates (bound)", "log Z quoted", "AIS agrees with itself",
                  "published mean-field bound", "weights"]
    else:
        header = ["model", "test log-likelihood (nats)", "range over the log Z estimates", "log Z quoted",
                  "AIS agrees with itself", "published, same estimator (AIS)", "weights"]
    rows = []
    for m in models:
        if m.pending:
            row = [model_cell(m), m.missing_text] + [DASH] * (len(header) - 2)
            row[-2] = published_cell(published_key(m), short=True)
            rows.append(row)
            continue
        row = [model_cell(m), figure_cell(m, "test_ll", bold=True)]
        if deep:
            k = importance_k(m)
            cell = figure_cell(m, "test_ll_importance", bold=True)
            row.append(f"{cell} (K = {k})" if k and not m.pending and cell != NOT_RECORDED else cell)
        row += [range_cell(m), quoted_cell(m), agreement_cell(m) if not m.pending else m.missing_text,
                published_cell(published_key(m), short=True), weights_cell(m)]
        rows.append(row)
    return markdown_table(header, rows) + published_note({published_key(m) for m in models} - {None})


def published_note(keys: set[str]) -> str:
    """Where each published number of a table comes from, what it measures, on which binarisation."""
    pub = R.published()
    lines = []
    for key in sorted(keys):
        p = pub[key]
        extra = f"; train {p['train']:.2f}" if "train" in p else ""
        extra += f"; log Z {p['log_z']:.2f}" if "log_z" in p else ""
        lines.append(f"- {p['short']} {p['value']:.2f} ({p['model']}{extra}): {p['source']}; {p['estimator']}; "
                     f"{p['binarisation']}.")
    return ("\nPublished numbers:\n\n" + "\n".join(lines) + "\n") if lines else ""


def estimates_table(models: list[Model]) -> str:
    """Every AIS estimate of log Z in the files, with the test figure each one gives."""
    deep = any(m.deep for m in models)
    header = ["model", "AIS", "annealed (others summed out)", "betas", "runs", "log Z [-3σ, +3σ]",
              "effective runs", "test bound with it" if deep else "test log-likelihood with it"]
    if deep:
        header.append("importance-sampled with it")
    header.append("file (`models/<model>_...`)")
    rows = []
    for m in models:
        if m.pending:
            continue
        term = m._term("test_ll")
        term_is = m._term("test_ll_importance")
        for e in m.estimates:
            band = f"{e.log_z:.2f} [{num(e.lo)}, {num(e.hi)}]" if e.lo is not None else f"{e.log_z:.2f}"
            row = [model_cell(m), e.direction, e.path(m.n_layers), num(e.betas), num(e.runs), band,
                   num(e.ess, 1), num(term[0] - e.log_z) if term else NOT_RECORDED]
            if deep:
                row.append(num(term_is[0] - e.log_z) if term_is else DASH)
            note = " (superseded by more betas)" if e.superseded else ""
            short = e.source[len(m.name) + 1:] if e.source.startswith(m.name + "_") else e.source
            row.append(f"`{short}`{note}")
            rows.append(row)
    return markdown_table(header, rows)


def _schedule(config: dict, key: str) -> str:
    value = (config.get("schedule") or {}).get(key)
    if not value:
        return ""
    if isinstance(value, list):
        return _step_schedule(value)
    if isinstance(value, dict) and "from" in value:
        if "every" in value:
            return f"{value['from']} to {value['to']}, +1 every {value['every']} epochs"
        return f"{value['from']} to {value['to']} over {value.get('over')} epochs ({value.get('shape', 'linear')})"
    return str(value)


def _step_schedule(steps: list) -> str:
    """A piecewise-constant schedule [[epoch, value], ...]: each step, or, where three or more steps after
    the first value each multiply it by the same factor at the same spacing in epochs, that rule (the
    halvings of the long DBM rounds: "0.001; halved every 10 epochs from epoch 60 to epoch 110, to
    1.5625e-05")."""
    (_, first), rest = steps[0], steps[1:]
    values = [first] + [v for _, v in rest]
    epochs = [e for e, _ in rest]
    gaps = {b - a for a, b in itertools.pairwise(epochs)}
    ratios = [b / a for a, b in itertools.pairwise(values) if a]
    if len(rest) >= 3 and len(gaps) == 1 and len(ratios) == len(rest) and \
            all(abs(r - ratios[0]) <= 1e-9 * abs(ratios[0]) for r in ratios):
        factor = "halved" if abs(ratios[0] - 0.5) <= 1e-12 else f"times {ratios[0]:g}"
        return (f"{first}; {factor} every {gaps.pop()} epochs from epoch {epochs[0]} to epoch {epochs[-1]}, "
                f"to {values[-1]}")
    return str(first) + "".join(f"; {v} from epoch {e}" for e, v in rest)


def recipe_row(m: Model) -> list[str]:
    c = m.config or {}
    if not c:
        return [model_cell(m)] + [NOT_RECORDED] * 7
    model, training, opt = c.get("model", {}), c.get("training", {}), c.get("optimizer", {})
    pre = c.get("pretrain") or {}
    start = []
    if model.get("init_from"):
        start.append(f"from `{str(model['init_from']).rsplit('/', 1)[-1]}`")
    epochs = pre.get("epochs")
    if epochs:
        start.append(f"greedy pre-training {epochs} epochs")
    if not start:
        start.append("from scratch")
    alg = str(training.get("algorithm", "cd"))
    k = _schedule(c, "k") or training.get("k", 1)
    chains = f", {training['n_chains']} chains" if alg in ("pcd", "pt", "mfpcd") or m.deep else ""
    label = f"{alg.upper()}-{k}"
    if m.deep and alg in ("pcd", "mfpcd"):
        label = f"mean-field ({training.get('mf_steps')} updates) + PCD-{k}"
    extra = []
    if training.get("centering"):
        cen = training["centering"]
        extra.append(f"centred (rate {cen.get('rate')}, {cen.get('target')})" if isinstance(cen, dict) else "centred")
    if training.get("max_norm"):
        extra.append(f"max-norm {training['max_norm']}")
    if training.get("sparsity"):
        extra.append("sparsity targets")
    if alg == "pt":
        extra.append(f"{training.get('n_temperatures')} temperatures")
    lr = _schedule(c, "lr") or f"{opt.get('lr')}"
    if opt.get("decay"):
        lr += f", decay {opt['decay']} ({opt.get('decay_mode', 'inverse')})"
    momentum = _schedule(c, "momentum") or f"{opt.get('momentum')}"
    ais = c.get("ais", {})
    data = c.get("data", {})
    rows = f"{int(data['n_train']):,}" if data.get("n_train") else NOT_RECORDED
    return [model_cell(m), "; ".join(start), f"{label}{chains}" + (f"; {', '.join(extra)}" if extra else ""),
            f"{training.get('epochs')} × batch {training.get('batch_size')}", rows, lr, momentum,
            f"{training.get('l2', 0)}", binarisation(c),
            f"{ais.get('n_runs', NOT_RECORDED)} runs × {num(ais.get('n_betas') or m._default_betas())} betas"
            + (", reverse" if ais.get("reverse") else "")]


def recipe_table(models: list[Model]) -> str:
    header = ["model", "start", "algorithm", "epochs", "training rows", "learning rate", "momentum",
              "weight decay (L2)", "binarisation", "final AIS"]
    rows = []
    for m in models:
        row = recipe_row(m)
        if m.config_file is None:
            row = [model_cell(m)] + [NOT_RECORDED] * (len(header) - 1)
        rows.append(row)
    return markdown_table(header, rows)


def config_links(models: list[Model]) -> str:
    items = [f"`{m.name}`: `{m.config_file}`" for m in models if m.config_file]
    return "Configs read: " + "; ".join(items) + "." if items else ""


def monitors_table(models: list[Model]) -> str:
    """The last epoch of each training log: what the run itself monitored."""
    header = ["model", "status", "epochs run", "reconstruction loss, train / valid", "pseudo-LL, train / valid",
              "AIS monitor at the end: train / valid (forward log Z)"]
    rows = []
    for m in models:
        if m.pending:
            rows.append([model_cell(m), m.missing_text, "", "", "", ""])
            continue
        r = m.results or {}

        def pair(a, b, m=m):
            return f"{num(m.last(a))} / {num(m.last(b))}"

        rows.append([model_cell(m), str(r.get("status", NOT_RECORDED)), num(r.get("epochs_run")),
                     pair("loss", "val_loss"), pair("pll", "val_pll"), pair("train_ll", "val_ll")])
    return markdown_table(header, rows)


def _wall(seconds) -> str:
    if seconds is None:
        return NOT_RECORDED
    seconds = float(seconds)
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.0f} s"


def provenance_table(models: list[Model]) -> str:
    header = ["model / file", "commit", "machine", "date", "wall time", "command"]
    rows = []
    for m in models:
        p = m.provenance
        wall = p.get("wall_time_s")
        if wall is None and m.results and "seconds_total" in m.results:
            wall = m.results["seconds_total"]
        note = p.get("wall_time_note")
        wall_text = _wall(wall) + (f"; {note}" if note else "")
        if wall is None and note:
            wall_text = note
        cmd = p.get("command")
        rows.append([model_cell(m), p.get("commit") or m.missing_text, p.get("machine") or DASH, p.get("date") or DASH,
                     wall_text, f"`{cmd}`" if cmd else DASH])
        for source, extra in (p.get("extras") or {}).items():
            extra_wall = _wall(extra.get("wall_time_s")) if extra.get("wall_time_s") is not None else NOT_RECORDED
            rows.append([f"↳ `{source}`", extra.get("commit", DASH), extra.get("machine", DASH), p.get("date") or DASH,
                         extra_wall, f"`{extra['command']}`" if extra.get("command") else DASH])
        for source, r in m.raises:  # scripts/raise_shipped.py records its own provenance
            threads = f", {r['threads']} thread{'s' if r['threads'] != 1 else ''}" if r.get("threads") else ""
            rows.append([f"↳ `{source}`", str(r.get("commit", NOT_RECORDED))[:7], f"{r.get('machine', DASH)}{threads}",
                         r.get("date", DASH), _wall(r.get("wall_time_s")),
                         f"`python scripts/{r['command']}`" if r.get("command") else DASH])
    return markdown_table(header, rows)


def _chains_betas(key: str) -> str:
    """``posterior_ais_10x200`` -> "10 chains × 200 betas" (the key estimator_check.py writes)."""
    chains, _, betas = key.rsplit("_", 1)[-1].partition("x")
    return f"{int(chains):,} chains × {int(betas):,} betas" if chains.isdigit() and betas.isdigit() else key


def estimator_check_table(models: list[Model]) -> str:
    """The importance-sampling convergence checks (estimator_check.py) where a model has one."""
    header = ["model", "test rows", "log Z used", "mean-field bound", "importance-sampled K = 100",
              "K = 1,000", "per-image AIS", "file (`models/<model>_...`)"]
    rows = []
    for m in models:
        c = m.checks
        if not c:
            continue
        ais = [(k, v) for k, v in c.items() if k.startswith("posterior_ais")]
        ais_text = "; ".join(f"{v['ll']:.2f} ({_chains_betas(k)})" for k, v in ais) or NOT_RECORDED

        def ll(key, c=c):
            return num(c[key]["ll"]) if key in c else NOT_RECORDED

        rows.append([model_cell(m), num(c.get("rows")), num(c.get("log_z")), ll("mean_field_bound"),
                     ll("importance_100"), ll("importance_1000"), ais_text,
                     " ".join(f"`{Path(f).name[len(m.name) + 1:]}`" for f in m.files if "estimator_check" in f)])
    return markdown_table(header, rows) if rows else f"{NOT_RECORDED}\n"


# -- RAISE beside AIS (scripts/raise_shipped.py: <model>_raise*.json beside the weights) ------------


def _raise_rows(m: Model) -> list[tuple[str, dict | None]]:
    """(file name, RAISE JSON or None) of a model: every file found, and ``<name>_raise.json`` (the file
    ``scripts/raise_shipped.py`` writes) as None while a model whose weights ship has none."""
    rows: list[tuple[str, dict | None]] = list(m.raises)
    expected = R.RAISE_FILE.format(name=m.name)
    if m.weights is not None and expected not in {name for name, _ in rows}:
        rows.append((expected, None))
    return rows


def _signed(value) -> str:
    return num(value, signed=True) if value is not None else NOT_RECORDED


def raise_table(models: list[Model]) -> str:
    """RAISE's mean log p(v) on the first test rows beside the AIS figure of the same rows: one row per
    RAISE file of each model whose weights ship (or whose file exists), "not yet measured" for a file
    still to be written."""
    deep = any(m.deep for m in models)
    ais = "mean-field bound with AIS log Z" if deep else "AIS log-likelihood"
    header = ["model", "test rows", "chains × betas", "RAISE, conservative (nats)", "effective chains (median)",
              f"{ais}, same rows: forward (reverse) log Z", "RAISE − AIS: forward (reverse)", "wall time",
              "file (`<model>_...`)"]
    rows = []
    for m in models:
        if m.pending:
            continue
        for name, r in _raise_rows(m):
            short = name[len(m.name) + 1:] if name.startswith(m.name + "_") else name
            where = "`natural_bm/pretrained/`" if (R.PRETRAINED / name).exists() else "`models/`"
            if r is None:
                rows.append([model_cell(m), DASH, DASH, R.NOT_MEASURED, DASH, DASH, DASH, DASH,
                             f"`{short}`, not written yet"])
                continue
            ll = r.get("test_ll_raise")
            fwd, rev = r.get("test_ll_forward_same_rows"), r.get("test_ll_reverse_same_rows")
            chains = r.get("chains")
            ess = r.get("raise_ess_median")
            ess_text = f"{ess:.1f} of {chains}" if ess is not None and chains else num(ess, 1)
            diff = _signed(ll - fwd) if ll is not None and fwd is not None else NOT_RECORDED
            if ll is not None and rev is not None:
                diff += f" ({_signed(ll - rev)})"
            wall = _wall(r.get("wall_time_s", r.get("seconds_raise")))
            rows.append([model_cell(m), num(r.get("rows")), f"{num(chains)} × {num(r.get('betas'))}",
                         f"**{pm(ll, r.get('test_ll_raise_stderr'))}**", ess_text,
                         pm(fwd, r.get("test_ll_same_rows_stderr")) + (f" ({num(rev)})" if rev is not None else ""),
                         diff,
                         wall, f"`{short}` in {where}"])
    return markdown_table(header, rows) if rows else f"{R.NOT_MEASURED}\n"


# -- the tempering ladder (experiments/tempering/ladder_swap_rates.json) ----------------------------

LADDER_FILE = "ladder_swap_rates.json"
LADDERS = (("fixed", "fixed geometric"), ("adaptive", "self-tuning (`ParallelTempering(adaptive=True)`, tuned)"))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def ladder_table(_models=None) -> str:
    """The swap rates of neighbouring rungs on the fixed geometric ladder and on the self-tuning one."""
    data = R.experiment_file("tempering", LADDER_FILE)
    if data is None:
        return f"{R.NOT_MEASURED.capitalize()}: `experiments/tempering/{LADDER_FILE}` is not written yet.\n"
    header = ["ladder", "rungs", "inverse temperatures", "swap rate, lowest / median / highest pair",
              "hottest pair", "tuning"]
    rows = []
    for key, label in LADDERS:
        lad = data.get(key)
        if not lad:
            rows.append([label, R.NOT_MEASURED, "", "", "", ""])
            continue
        betas, rates = lad["betas"], lad["swap_rates"]
        inner = rates[:-1] if key == "adaptive" and len(rates) > 1 else rates  # the hottest gap is the remainder
        spread = f"{min(inner):.4f} / {_median(inner):.4f} / {max(inner):.4f}"
        if key == "adaptive":
            band = lad.get("band") or []
            tuning = (f"target {lad.get('target')}" + (f", band [{band[0]}, {band[1]}]" if len(band) == 2 else "")
                      + f"; {num(lad.get('tuning_steps'))} steps, ladder placed anew "
                      + ("once" if lad.get("ladder_changes") == 1 else f"{num(lad.get('ladder_changes'))} times"))
        else:
            tuning = "none"
        rows.append([label, num(len(betas)), f"{max(betas):g} to {min(betas):g}",
                     spread + (" (all but the hottest)" if inner is not rates else ""), f"{rates[-1]:.4f}", tuning])
    note = (f"\nModel `{data.get('model', NOT_RECORDED)}`. How the rates were measured, as the file says: "
            f"{data.get('_about', NOT_RECORDED)}\n\nMeasured {data.get('date', NOT_RECORDED)} at commit "
            f"{str(data.get('git_head', NOT_RECORDED))[:7]} with `{data.get('command', NOT_RECORDED)}` "
            f"(`experiments/tempering/{LADDER_FILE}`).\n")
    return markdown_table(header, rows) + note


# -- trajectory AIS against a full AIS (experiments/trajectory_ais/drift.json) ----------------------

DRIFT_FILE = "drift.json"
_NOT_VARIANTS = {"epoch", "seconds_training", "reference", "seconds"}


def variant_label(spec: str) -> str:
    """A trajectory estimator's spec (``experiments/trajectory_ais/compare.py``, ``anchor_cost.py``) in words."""
    if spec.isdigit():
        return f"a full forward AIS of {int(spec):,} betas at every epoch (what a re-anchoring costs)"
    body, _, anchor = spec.partition("#")
    body, _, restart = body.partition("@")
    kind, *rest = body.split(":")
    words = {
        "own": f"its own {rest[0]} chains carried from epoch to epoch (`TrajectoryAISCallback`)" if rest else
               "its own chains carried from epoch to epoch (`TrajectoryAISCallback`)",
        "fresh": "copies of the training's persistent chains, annealed over each epoch's move",
        "reverse": "the training's chains annealed back over each move (reverse AIS of the move)",
        "bar": "Bennett's acceptance ratio of each move's forward and reverse weights",
        "training": "the training's persistent chains, an increment per update (`TrainingChainsAIS`)",
        "training_e1": "the training's persistent chains from the end of the first epoch (`TrainingChainsAIS`)",
    }
    text = words.get(kind, f"`{spec}`")
    if restart:
        every, steps = (restart.split(":") + [""])[:2]
        text += f"; a fresh population every {every} epochs" + (f" ({int(steps):,} steps)" if steps.isdigit() else "")
    if anchor:
        every, betas = (anchor.split(":") + [""])[:2]
        each = "every epoch" if every == "1" else f"every {every} epochs"
        text += f"; re-anchored {each}" + (f" by a {int(betas):,}-beta AIS" if betas.isdigit() else "")
    return f"`{spec}`: {text}"


def _drift_series(data, where: str = "") -> list[tuple[str, dict]]:
    """Every object of the file (at any depth) that holds per-epoch rows with a reference log Z:
    (where it is in the file, the object)."""
    found = []
    if isinstance(data, dict):
        epochs = data.get("epochs")
        if isinstance(epochs, list) and any(isinstance(e, dict) and "reference" in e for e in epochs):
            found.append((where, data))
        for key, value in data.items():
            if key != "epochs" and isinstance(value, dict | list):
                found += _drift_series(value, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _drift_series(value, f"{where}[{i}]")
    return found


def _shown_epochs(epochs: list[int]) -> list[int]:
    wanted = [1, 3, 5, 10, 20]
    shown = [e for e in wanted if e in epochs]
    if epochs and epochs[-1] not in shown:
        shown.append(epochs[-1])
    return shown


def drift_table(_models=None) -> str:
    """How far each trajectory estimate of log Z is from the reference (a full AIS or exact) per epoch."""
    data = R.experiment_file("trajectory_ais", DRIFT_FILE)
    if data is None:
        return (f"{R.NOT_MEASURED.capitalize()}: `experiments/trajectory_ais/{DRIFT_FILE}` is not written yet; "
                "the table fills in when it is.\n")
    about = data.get("_about") or data.get("about")
    out = [f"{about}\n"] if isinstance(about, str) else []
    series = _drift_series(data)
    if not series:
        keys = ", ".join(f"`{k}`" for k in data)
        return "".join(out) + f"{NOT_RECORDED}: no per-epoch rows with a reference in `{DRIFT_FILE}` (keys: {keys}).\n"
    for where, block in series:
        rows_in = [e for e in block["epochs"] if isinstance(e, dict)]
        refs = {int(e["epoch"]): e["reference"] for e in rows_in if isinstance(e.get("reference"), dict)
                and e["reference"].get("logZ") is not None}
        epochs = sorted(refs)
        shown = _shown_epochs(epochs)
        variants = []
        for e in rows_in:
            for key, value in e.items():
                if key not in _NOT_VARIANTS and isinstance(value, dict) and "logZ" in value and key not in variants:
                    variants.append(key)
        train_s = [e["seconds_training"] for e in rows_in if isinstance(e.get("seconds_training"), int | float)]
        cost_header = "seconds per epoch" + (f" (a training epoch: {sum(train_s) / len(train_s):.1f} s)" if train_s
                                             else "")
        header = ["estimator"] + [f"epoch {e}" for e in shown] + ["largest |drift|", cost_header]
        rows = []
        for spec in variants:
            by_epoch = {int(e["epoch"]): e[spec] for e in rows_in if isinstance(e.get(spec), dict)}
            drifts = {e: by_epoch[e]["logZ"] - refs[e]["logZ"] for e in epochs
                      if e in by_epoch and isinstance(by_epoch[e].get("logZ"), int | float)
                      and math.isfinite(by_epoch[e]["logZ"])}
            worst = max(drifts.values(), key=abs) if drifts else None
            spent = block.get("variant_seconds", block.get("seconds"))  # (summarise.py: variant_seconds)
            total = spent.get(spec) if isinstance(spent, dict) else None
            per = [v["seconds"] for v in by_epoch.values() if isinstance(v.get("seconds"), int | float)]
            seconds = total / len(by_epoch) if total and by_epoch else (sum(per) / len(per) if per else None)
            rows.append([variant_label(spec)] + [_signed(drifts.get(e)) if e in drifts else DASH for e in shown]
                        + [_signed(worst), f"{seconds:.1f}" if seconds is not None else NOT_RECORDED])
        by = sorted({str(r.get("by", NOT_RECORDED)) + (f", {r['betas']:,} betas" if r.get("betas") else "")
                     for r in refs.values()})
        title = f"**{where}**: " if where else ""
        traj = block.get("trajectory") or block.get("recipe") or data.get("trajectory") or {}
        what = ", ".join(f"{k} {v}" for k, v in traj.items()) if isinstance(traj, dict) else str(traj)
        out.append(f"{title}log Z of each estimator minus the reference ({'; '.join(by)}), nats.\n")
        out.append(markdown_table(header, rows))
        command, date = block.get("command") or data.get("command"), block.get("date") or data.get("date")
        made = [f"`{command}`" if command else None, str(date) if date else None]
        made = [m for m in made if m]
        commit = block.get("git_commit") or data.get("git_commit")
        out.append(f"Training: {what or NOT_RECORDED}. " + (f"Made with {', '.join(made)}" if made else "Made")
                   + (f", commit {str(commit)[:7]}" if commit else "") + ".\n")
    return "\n".join(out)


PRECISION_FILE = "precision.json"
_RECIPE_TITLES = {"demo": "the demo recipe (RBM 784-200, PCD-1, 30 epochs)",
                  "rbm500_cd25_20_epochs": "`rbm500_cd25`, 20 epochs (RBM 784-500, CD-1 to CD-5)"}


def _numbers(by_seed: dict, key: str) -> list[float]:
    """The numeric values of ``key`` over the runs of ``by_seed`` (missing and null ones left out)."""
    return [r[key] for r in by_seed.values() if isinstance(r.get(key), int | float)]


def _mean_spread(values: list[float]) -> tuple[str, str]:
    if not values:
        return NOT_RECORDED, NOT_RECORDED
    mean = sum(values) / len(values)
    return f"{mean:.2f}", (f"{max(values) - min(values):.2f}" if len(values) > 1 else DASH)


def precision_table(_models=None) -> str:
    """The bfloat16 quality study (``experiments/precision_study/precision.json``): per recipe and
    precision, each seed's test log-likelihood (forward log Z; the conservative one with the reverse log Z),
    the mean and spread over the seeds, the training's seconds per epoch and the run's wall time, the
    verdict the study recorded and its ``note``."""
    data = R.experiment_file("precision_study", PRECISION_FILE)
    if data is None:
        return (f"{R.NOT_MEASURED.capitalize()}: `experiments/precision_study/{PRECISION_FILE}` is not written "
                "yet; the table fills in when it is.\n")
    runs, verdicts = data.get("runs") or {}, data.get("verdict") or {}
    out = []
    for recipe, by_precision in runs.items():
        seeds = sorted({s for r in by_precision.values() for s in r}, key=str)
        header = ["precision"] + [f"seed {s}" for s in seeds] + ["mean", "spread (max - min)", "conservative mean",
                                                                "training s per epoch (mean)", "s per run (mean)"]
        rows = []
        for precision, by_seed in by_precision.items():
            secs, per_epoch = _numbers(by_seed, "seconds"), _numbers(by_seed, "seconds_per_epoch")
            mean, spread = _mean_spread(_numbers(by_seed, "test_ll"))
            cells = [num(by_seed[s]["test_ll"]) if isinstance(by_seed.get(s, {}).get("test_ll"), int | float)
                     else DASH for s in seeds]
            rows.append([precision, *cells, mean, spread, _mean_spread(_numbers(by_seed, "test_ll_reverse"))[0],
                         f"{sum(per_epoch) / len(per_epoch):.1f}" if per_epoch else NOT_RECORDED,
                         f"{sum(secs) / len(secs):.0f}" if secs else NOT_RECORDED])
        said = []
        for precision in (p for p in by_precision if p != "float32"):
            keep = (verdicts.get(recipe) or {}).get(f"{precision}_within_float32_spread")
            n = len(_numbers(by_precision[precision], "test_ll"))
            seeds_said = f"{n} seed" + ("" if n == 1 else "s")
            said.append({True: f"{precision}'s mean ({seeds_said}) lies within float32's run-to-run spread of "
                               "float32's mean",
                         False: f"{precision}'s mean ({seeds_said}) lies outside float32's run-to-run spread of "
                                "float32's mean",
                         None: f"no verdict for {precision} yet (fewer than two float32 seeds, or no run)"}[keep])
        verdict = "; ".join(said) + "." if said else ""
        out.append(f"**{_RECIPE_TITLES.get(recipe, recipe)}**: test log-likelihood, nats per image (the "
                   f"once-sampled test set; forward AIS log Z). {verdict}\n")
        out.append(markdown_table(header, rows))
    made = [f"`{data['command']}`" if data.get("command") else None, data.get("date"),
            f"commit {str(data['git_commit'])[:7]}" if data.get("git_commit") else None]
    out.append("Made with " + ", ".join(m for m in made if m) + ".\n" if any(made) else "")
    if isinstance(data.get("note"), str):
        out.append(data["note"] + "\n")
    return "\n".join(out)


def dbn_figures(r: dict) -> dict:
    """A DBN's results in one set of names, whichever wrote them: ``natural-bm train`` (``logZ``,
    ``test_ll``, ``test_ll_reverse``, ``rbm_epochs``, ``provenance.wall_time_s``) or the older
    ``experiments/mnist_dbn/run.py`` (``logZ_top``, ``test_bound``, ``test_bound_reverse``, ``top_epochs``,
    ``seconds_total``)."""
    new = "test_ll" in r or "logZ" in r

    def get(new_key, old_key):
        return r.get(new_key) if new else r.get(old_key)

    epochs = r.get("rbm_epochs")
    if epochs is None and r.get("top_epochs") is not None:
        epochs = r["top_epochs"]
    return {"logZ": get("logZ", "logZ_top"), "lo": get("logZ_lo", "logZ_top_lo"), "hi": get("logZ_hi", "logZ_top_hi"),
            "ess": r.get("ais_ess"), "logZ_reverse": get("logZ_reverse", "logZ_top_reverse"),
            "ess_reverse": r.get("ais_ess_reverse"), "logZ_exact": r.get("logZ_exact"),
            "test": get("test_ll", "test_bound"), "test_stderr": get("test_ll_stderr", "test_bound_stderr"),
            "test_reverse": get("test_ll_reverse", "test_bound_reverse"), "test_exact": r.get("test_ll_exact"),
            "epochs": epochs, "betas": r.get("betas", r.get("n_betas")), "runs": r.get("runs"),
            "wall": (r.get("provenance") or {}).get("wall_time_s", r.get("seconds_total"))}


def dbn_conservative(r: dict) -> tuple[float | None, str]:
    """(the DBN's quoted test figure, the log Z it uses): the bound with the exact log Z of the top RBM
    where there is one, else with the larger of its forward and reverse AIS log Z (the lower figure, as
    for every model of these pages)."""
    f = dbn_figures(r)
    if f["test_exact"] is not None:
        return f["test_exact"], "exact log Z"
    figures = [(f[key], words) for key, words in (("test", "forward AIS log Z"), ("test_reverse", "reverse AIS log Z"))
               if f[key] is not None]
    return min(figures) if figures else (None, NOT_RECORDED)


DBN_PUBLISHED_FILE = "published.json"  # experiments/mnist_dbn/: a published DBN figure with its source


def dbn_published(m: Model) -> dict | None:
    """The published figure of this DBN, if ``experiments/mnist_dbn/published.json`` or the ``_published``
    entry of its ``provenance.json`` gives one with its source: {value, source, short, estimator, ...}.
    An entry may be keyed by model name or name its ``layer_sizes``; a lone entry is SM2008's
    784-500-500-2000 DBN."""
    candidates = []
    for data in (R.experiment_file("mnist_dbn", DBN_PUBLISHED_FILE), R.provenance("mnist_dbn").get("_published")):
        if isinstance(data, dict):
            candidates += [data] if "value" in data else [v for k, v in data.items()
                                                           if isinstance(v, dict) and "value" in v
                                                           and k in (m.name, "_" + m.name, m.architecture)]
    for p in candidates:
        sizes = p.get("layer_sizes") or [784, 500, 500, 2000]
        if [int(n) for n in sizes] == (m.layer_sizes or []) and p.get("source") and p.get("value") is not None:
            return p
    return None


def dbn_published_cell(m: Model, short: bool = False) -> str:
    p = dbn_published(m)
    if p is None:
        return "none quoted"
    label = p.get("short", "SM2008")
    return f"{float(p['value']):.2f} ({label})" if short else f"{float(p['value']):.2f} ({label}, {p['source']})"


def dbn_published_note(models: list[Model]) -> str:
    """Where each published DBN figure comes from, or why none is quoted (the ``_published`` text of
    ``experiments/mnist_dbn/provenance.json``)."""
    lines = []
    for m in models:
        p = dbn_published(m)
        if p is not None:
            extra = f"; {p['estimator']}" if p.get("estimator") else ""
            lines.append(f"- `{m.name}`: {float(p['value']):.2f}, {p['source']}{extra}.")
    if lines:
        return "\nPublished numbers:\n\n" + "\n".join(lines) + "\n"
    why = R.provenance("mnist_dbn").get("_published")
    return f"\n**Published:** none quoted. {why}\n" if isinstance(why, str) else "\n**Published:** none quoted.\n"


def dbn_table(models: list[Model]) -> str:
    header = ["model", "epochs of each RBM (bottom first)", "top RBM log Z, forward AIS [-3σ, +3σ] (effective runs)",
              "reverse AIS (effective runs)", "test lower bound: forward / reverse log Z (nats)", "wall time",
              "published, same estimator"]
    rows = []
    for m in models:
        r = m.results
        label = f"`{m.name}` ({m.architecture})"
        if r is None:
            rows.append([label, m.missing_text, DASH, DASH, DASH, DASH, dbn_published_cell(m, short=True)])
            continue
        f = dbn_figures(r)
        epochs = f["epochs"]
        if isinstance(epochs, list):
            reused = " (the bottom RBM reused)" if epochs and epochs[0] == 0 else ""
            epochs_text = ", ".join(str(e) for e in epochs) + reused
        else:
            epochs_text = f"top RBM: {num(epochs)}" if epochs is not None else NOT_RECORDED
        fwd = f"{num(f['logZ'])} [{num(f['lo'])}, {num(f['hi'])}] ({num(f['ess'], 1)})"
        if f["betas"]:
            fwd += f", {num(f['runs']) + ' runs × ' if f['runs'] else ''}{num(f['betas'])} betas"
        rev = f"{num(f['logZ_reverse'])} ({num(f['ess_reverse'], 1)})" if f["logZ_reverse"] is not None else DASH
        quoted, _ = dbn_conservative(r)
        bound = pm(f["test"], f["test_stderr"])
        if f["test"] is not None and f["test"] == quoted:
            bound = f"**{bound}**"
        if f["test_reverse"] is not None:
            text = num(f["test_reverse"])
            bound += f" / **{text}**" if f["test_reverse"] == quoted else f" / {text}"
        if f["test_exact"] is not None:
            bound += f"; exact log Z: **{num(f['test_exact'])}**"
        rows.append([label, epochs_text, fwd, rev, bound, _wall(f["wall"]), dbn_published_cell(m, short=True)])
    return markdown_table(header, rows) + dbn_published_note(models)


def classification_table(models: list[Model]) -> str:
    header = ["model", "test accuracy (exact p(y | v))", "validation accuracy, last epoch",
              "test log-likelihood of the pixels (nats)", "AIS agrees with itself"]
    rows = []
    for m in models:
        if m.pending:
            rows.append([model_cell(m), m.missing_text, "", "", ""])
            continue
        acc = (m.results or {}).get("test_accuracy")
        rows.append([f"`{m.name}` ({m.architecture})", f"**{acc:.2%}**" if acc is not None else NOT_RECORDED,
                     f"{m.last('val_accuracy'):.2%}" if m.last("val_accuracy") is not None else NOT_RECORDED,
                     figure_cell(m), agreement_cell(m)])
    return markdown_table(header, rows)


def exact_table(models: list[Model]) -> str:
    """Models small enough for exact log Z: the exact value beside forward and reverse AIS."""
    header = ["model", "test log-likelihood, exact log Z (nats)", "log Z exact", "forward AIS (effective runs)",
              "reverse AIS (effective runs)", "wall time"]
    rows = []
    for m in models:
        if m.pending:
            rows.append([model_cell(m), m.missing_text, "", "", "", _wall(m.provenance.get("wall_time_s"))])
            continue
        r = m.results or {}
        rows.append([model_cell(m), pm(r.get("test_ll_exact"), r.get("test_ll_stderr")), num(r.get("logZ_exact"), 4),
                     f"{num(r.get('logZ'), 4)} ({num(r.get('ais_ess'), 1)})",
                     f"{num(r.get('logZ_reverse'), 4)} ({num(r.get('ais_ess_reverse'), 1)})",
                     _wall(m.provenance.get("wall_time_s"))])
    return markdown_table(header, rows)


def text_result(models: list[Model]) -> str:
    """A result the run itself wrote as Markdown (``experiments/mnist_features``)."""
    out = []
    for m in models:
        if m.pending:
            out.append(f"`{m.name}`: {m.missing_text}.\n")
        else:
            out.append(m.results["_text"].strip() + "\n")
    return "\n".join(out)


# -- headline (home page and README) ----------------------------------------------------------------


def best(models: list[Model], sizes: list[int], key: str = "test_ll") -> Model | None:
    """The believable model of these layer sizes with the highest quoted figure."""
    candidates = [m for m in models if m.layer_sizes == sizes and m.believable[0] and m.figure(key)]
    return max(candidates, key=lambda m: m.figure(key)[0]) if candidates else None


def headline_rows(link: callable) -> list[list[str]]:
    """``link(experiment)`` gives the link to an experiment's results page."""
    rbms = R.load_experiment("rbm_mnist_sm2008")
    dbms = R.load_experiment("dbm_mnist_sh2009")
    dbns = R.load_experiment("mnist_dbn")
    classes = R.load_experiment("mnist_classification")
    rows = []
    m = best(rbms, [784, 500])
    if m:
        rows.append([f"RBM 784-500 (`{m.name}`)", "test log-likelihood, AIS log Z", figure_cell(m),
                     published_cell("sm2008_rbm500_cd25", True), DASH, link("rbm_mnist_sm2008")])
    for sizes, key in (([784, 500, 1000], "sh2009_dbm_784_500_1000"),
                       ([784, 500, 500, 1000], "sh2009_dbm_784_500_500_1000")):
        m = best(dbms, sizes, "test_ll_importance") or best(dbms, sizes)
        label = "-".join(map(str, sizes))
        if m:
            k = importance_k(m)
            tight = figure_cell(m, "test_ll_importance")
            rows.append([f"DBM {label} (`{m.name}`)", "test mean-field bound, AIS log Z", figure_cell(m),
                         published_cell(key, True), f"{tight} (importance-sampled, K = {k})" if k else tight,
                         link("dbm_mnist_sh2009")])
        else:
            pending = [d for d in dbms if d.layer_sizes == sizes]
            text = pending[0].missing_text if pending else R.PENDING
            rows.append([f"DBM {label}" + (f" (`{pending[0].name}`)" if pending else ""),
                         "test mean-field bound, AIS log Z", text, published_cell(key, True), text,
                         link("dbm_mnist_sh2009")])
    for m in dbns:
        value, log_z = dbn_conservative(m.results) if m.results else (None, "AIS log Z")
        figure = num(value) if m.results else m.missing_text
        rows.append([f"DBN {m.architecture} (`{m.name}`)",
                     f"test lower bound (SM2008 section 4), {log_z} of the top RBM", figure,
                     dbn_published_cell(m, short=True), DASH, link("mnist_dbn")])
    for m in classes:
        acc = (m.results or {}).get("test_accuracy")
        rows.append([f"classification RBM {m.architecture} (`{m.name}`)", "test accuracy, exact p(y | v)",
                     f"{acc:.2%}" if acc is not None else m.missing_text, DASH, DASH, link("mnist_classification")])
    return rows


HEADLINE_HEADER = ["model", "estimator", "ours (nats per image)", "published, same estimator",
                   "ours, tighter estimator", "results page"]


def headline_table(link: callable) -> str:
    return markdown_table(HEADLINE_HEADER, headline_rows(link))


def headline_note() -> str:
    configs = {binarisation(m.config) for exp in ("rbm_mnist_sm2008", "dbm_mnist_sh2009")
               for m in R.load_experiment(exp) if m.config and not m.pending}
    ours = "; ".join(sorted(configs))
    return (f"MNIST test set, nats per image, ± the standard error over test images. Ours: {ours}. "
            "Each figure uses the largest of the model's current AIS estimates of log Z (the conservative "
            "one); the published numbers use the authors' own code, which binarises every training minibatch "
            "afresh. A DBM's mean-field bound is compared with Salakhutdinov & Hinton's, which is the same "
            "kind of number; our importance-sampled figure is a tighter bound on the same model, with no "
            "published counterpart, so it has a column of its own.")


# -- the quick settings over seeds (scripts/quick_rows.json) ----------------------------------------


def _quick_descriptions() -> dict[str, str]:
    import importlib.util

    path = R.REPO / "scripts" / "reproduce_quick.py"
    try:
        spec = importlib.util.spec_from_file_location("_reproduce_quick", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {name: row[0] for name, row in module.ROWS.items()}
    except Exception:  # the script is only read for its row descriptions
        return {}


def quick_rows_table(_models=None) -> str:
    """The quick settings of the experiments over seeds: the tolerance of a re-run."""
    path = R.REPO / "scripts" / "quick_rows.json"
    if not path.exists():
        return f"{NOT_RECORDED}\n"
    data = R.read_json(path)
    what = _quick_descriptions()
    header = ["row", "what (nats)", "mean ± sd over seeds", "seeds", "values", "wall time per seed", "commit",
              "machine", "date"]
    rows = []
    for name, row in data.get("rows", {}).items():
        rows.append([f"`{name}`", what.get(name, NOT_RECORDED), f"{row['mean']:.2f} ± {row['sd']:.2f}",
                     num(row.get("seeds")), ", ".join(f"{v:.2f}" for v in row.get("values", [])),
                     f"{row['seconds_per_seed']:.0f} s" if row.get("seconds_per_seed") else NOT_RECORDED,
                     row.get("commit", NOT_RECORDED), row.get("machine", NOT_RECORDED), row.get("date", NOT_RECORDED)])
    conditions = {row.get("conditions") for row in data.get("rows", {}).values()} - {None}
    note = ("\nConditions: " + "; ".join(sorted(conditions)) + ".\n") if conditions else ""
    return markdown_table(header, rows) + note


# -- benchmarks (docs/benchmarks/*.json: the measured tables, with their provenance) ----------------


def benchmark_files() -> list:
    folder = R.REPO / "docs" / "benchmarks"
    tables = [(R.read_json(p), p) for p in sorted(folder.glob("*.json"))]
    return sorted(tables, key=lambda t: (t[0].get("order", 999), t[1].name))


def benchmark_tables(script: str | None = None) -> str:
    """Every recorded benchmark table (of one script, or all), each with where and how it was measured."""
    out = []
    for table, path in benchmark_files():
        if script and table.get("script") != script:
            continue
        made = ", ".join(x for x in (table.get("machine"), table.get("conditions")) if x)
        when = ", ".join(x for x in (table.get("date"), f"commit {table['commit']}" if table.get("commit") else None)
                         if x)
        out.append(f"**{table['title']}**: {table.get('caption', '')}.\n")
        out.append(markdown_table(table["header"], table["rows"]))
        out.append(f"Measured {when} on {made}, with `{table['command']}`; {table.get('source', '')} "
                   f"(`docs/benchmarks/{path.name}`).\n")
    return "\n".join(out) if out else f"{NOT_RECORDED}\n"


def script_summary(path) -> tuple[str, str]:
    """(first line of a script's docstring, its usage line), read from the script."""
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else NOT_RECORDED
    usage = next((line.split(":", 1)[1].strip() for line in doc.splitlines() if line.startswith("Usage:")), "")
    return first, usage


def scripts_table(_models=None) -> str:
    header = ["script", "what it measures", "how to run it", "recorded tables"]
    recorded: dict[str, int] = {}
    for table, _ in benchmark_files():
        recorded[table.get("script", "")] = recorded.get(table.get("script", ""), 0) + 1
    rows = []
    for path in sorted((R.REPO / "scripts").glob("*.py")):
        if path.name.startswith(("_", "bench_common")):
            continue
        first, usage = script_summary(path)
        name = f"scripts/{path.name}"
        rows.append([f"`{name}`", first, f"`{usage}`" if usage else f"`python {name}`",
                     str(recorded.get(name, 0)) if recorded.get(name) else "none: run it for the table"])
    return markdown_table(header, rows)
