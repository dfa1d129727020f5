"""The ``natural-bm`` command: train, logz, sample, summary, inspect, export, snapshot, demo.

A MODEL argument (logz, sample, inspect, export) is a model file (``model.save``'s ``.pt``, or a portable
``.npz``/``.safetensors`` from ``export``), a results folder of ``natural-bm train`` (its ``model.pt``,
scored with the run's data and transform), or the name of a shipped model (``natural_bm.pretrained``:
``natural-bm logz rbm500-cd25-anneal``, scored on its data set). ``summary`` takes a results folder or
a shipped name.

Counts are spelled as the config and the Python API spell them: ``--n-runs``, ``--n-betas``,
``--n-chains``, ``--n-samples`` (``betas`` and ``chains`` are the schedule and the states themselves in
``natural_bm.estimators.AIS`` and the samplers); the old spellings are refused with their new names.

Exit status:

* 0: done.
* 2: an error (missing or damaged file, bad config key or value, unavailable device, results folder in
  use, unwritable or full disk...), printed as one line ``natural-bm: error: ...`` on stderr.
* 3: a ``train`` whose weights diverged (``TerminateOnNaN``): ``results.json`` and ``summary.txt`` say so
  and ``--resume`` continues from the last finite checkpoint.
* 75 (``EXIT_PREEMPTED``, sysexits' EX_TEMPFAIL): a ``train`` pre-empted by SIGTERM, SIGUSR1 or the
  ``--signal`` it was given: it stopped after the current update, its newest checkpoint (the last epoch
  boundary) is intact, and ``natural-bm train --resume DIR`` continues it bit-identically. A requeue
  script tests for 75 (``scripts/slurm_requeue.sh``).
* 130: interrupted (Ctrl-C).

Every file is written atomically, so an error, a kill or Ctrl-C never leaves half a file; an
interrupted ``train`` resumes with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import natural_bm.pretrained as pretrained
import natural_bm.run as run
from natural_bm import __version__, demo, distributed
from natural_bm.callbacks import SampleCallback
from natural_bm.callbacks.summary_callback import summarize
from natural_bm.datasets import load_files
from natural_bm.estimators.report import AISRuns, PosteriorAIS, RaiseAIS, ReverseAIS, evaluate_model
from natural_bm.io import LockedError, first_line, writes_files
from natural_bm.models import export_model, load_model
from natural_bm.models.portable import FORMATS
from natural_bm.rng import RandomSource
from natural_bm.run.checkpoints import MODEL_NAME
from natural_bm.run.data import data_description
from natural_bm.run.preemption import DEFAULT_SIGNALS, EXIT_PREEMPTED, Preempted, Preemption
from natural_bm.sampling import ParallelTempering
from natural_bm.viz import history_frame, image_grid
from natural_bm.viz.images import image_format, tile_scale
from natural_bm.viz.parameters import format_parameter_stats, parameter_stats

__all__ = ["CLIError", "EXIT_DIVERGED", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_PREEMPTED", "main"]

EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


class CLIError(Exception):
    pass


class _Renamed(argparse.Action):
    """A retired flag: refused, in one line, with its new spelling (hidden from --help)."""

    def __init__(self, option_strings, dest, new: str = "", why: str = "", **kwargs):
        super().__init__(option_strings, argparse.SUPPRESS, nargs="?", default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS)
        self.new, self.why = new, why

    def __call__(self, parser, namespace, values, option_string=None):
        raise CLIError(f"{option_string} is now {self.new} ({self.why}).")


def _renamed(parser, old: str, new: str, why: str) -> None:
    parser.add_argument(old, action=_Renamed, new=new, why=why)


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--threads takes a whole number >= 1, got {text!r}")
    return n


def _add_threads(parser, what: str) -> None:
    parser.add_argument("--threads", type=_threads, default=None, metavar="N",
                        help=f"CPU threads of torch ({what}; default: torch's, usually one per core)")


def _train_parser(sub) -> None:
    t = sub.add_parser(
        "train", help="train from a JSON/YAML config into a results folder",
        description=textwrap.fill(
            "Train from a JSON or YAML config into a results folder. Every key of the config is optional but "
            "the model section; --set overrides a key. On SIGTERM, SIGUSR1 or the --signal given, training "
            f"stops after the current update and exits with status {EXIT_PREEMPTED} (pre-empted): the newest "
            "checkpoint (the last epoch boundary) is intact and --resume continues the run bit-identically. "
            "Exit status: 0 done, 2 an error, 3 diverged, 75 pre-empted, 130 interrupted.", 79),
        epilog=run.config_help_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", default=None,
                   help="JSON or YAML config file (with --resume: only needed for a folder that holds no run yet)")
    t.add_argument("--out", help="results folder (default results/<config name>)")
    t.add_argument("--resume", metavar="RESULTS_DIR",
                   help="continue the run in RESULTS_DIR from its last checkpoint; a folder with no run yet (none, "
                        "or one killed at its start) starts CONFIG there, so one command starts and requeues a job")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config key, e.g. --set optimizer.lr=0.01 --set model.n_hidden=200 (VALUE is "
                        "YAML: 0.01, true, null, [784, 500]); checked as the file is and recorded in config.json. "
                        "With --resume only training.epochs, ais.* and samples.* may change")
    _add_threads(t, "--set threads=N: the config key, recorded in config.json")
    t.add_argument("--signal", default=None, metavar="SIGNAL",
                   help=f"also stop on this signal, e.g. SIGUSR2 ({' and '.join(DEFAULT_SIGNALS)} always stop: "
                        f"exit status {EXIT_PREEMPTED})")
    t.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2],
                   help="0 silent, 1 progress bars, 2 one line per epoch (default: 1 on a terminal, else 2)")


MODEL_HELP = ("a model file (.pt, .npz, .safetensors), a results folder of natural-bm train (its model.pt), or "
              "a shipped model's name (natural_bm.pretrained.list(): rbm500-cd25-anneal, dbm500-1000)")


def _logz_parser(sub) -> None:
    z = sub.add_parser("logz", help="estimate log Z and log-likelihoods of a saved model",
                       description="AIS (and exact, where feasible) log Z of a saved model, with the "
                                   "train/valid/test log-likelihoods (nats per image) they imply.")
    z.add_argument("model", help=MODEL_HELP)
    z.add_argument("--exact", action="store_true", help="also compute the exact log Z by enumeration")
    z.add_argument("--n-runs", type=int, default=100, help="AIS runs (default 100)")
    z.add_argument("--n-betas", type=int, default=None,
                   help="how many betas AIS anneals through (default: the 14,501 schedule)")
    _renamed(z, "--runs", "--n-runs", "the number of AIS runs, as ais.n_runs in a config")
    _renamed(z, "--betas", "--n-betas", "a count; AIS's betas are the schedule itself, as ais.n_betas in a config")
    z.add_argument("--reverse", action="store_true",
                   help="also run reverse AIS (with forward AIS a bracket on log Z, when the two do not cross) and "
                        "print the conservative log-likelihoods, ll - (logZ_reverse - logZ), beside the others")
    z.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    _add_threads(z, "printed with the results")
    z.add_argument("--parity", default="auto", choices=["auto", "0", "1"],
                   help="layers to anneal, the others summed out: 0 the even ones (v, h2, ...), 1 the odd ones; "
                        "auto: v for an RBM, the parity with fewer units for a DBM (h1 of 784-500-1000)")
    z.add_argument("--data", default=None, metavar="DATA",
                   help="the data of the base model and log-likelihoods: mnist, none, a .npy/.npz/.csv file (its "
                        "rows reported as test; for a run's model read as the run read its files: its npz key, "
                        "binarisation and standardisation), or a config file (its splits); default: the run's "
                        "config.json (a results folder, or beside the model file), a shipped model's data set, "
                        "else name one")
    z.add_argument("--kind", default="sampled", help="MNIST kind for the log-likelihoods (default sampled)")
    z.add_argument("--importance-samples", type=int, default=None, metavar="K",
                   help="also the log-likelihoods with log p*(v) importance-sampled from K draws of the even hidden "
                        "layers (DBMs: a stochastic lower bound, tighter than the mean-field bound)")
    z.add_argument("--posterior-ais", type=int, nargs=2, default=None, metavar=("N_CHAINS", "N_BETAS"),
                   help="also the test log-likelihood with log p*(v) from per-image AIS (N_CHAINS runs of N_BETAS "
                        "betas from the mean-field posterior; natural_bm.estimators.log_prob_ais): a check on the "
                        "importance-sampled figure; about 1e6 multiply-adds per image, chain and beta for 784-500-1000")
    z.add_argument("--posterior-rows", type=int, default=None, metavar="N",
                   help="only the first N test rows for --posterior-ais (default all)")
    z.add_argument("--raise", dest="raise_ais", type=int, nargs="*", default=None, metavar="N",
                   help="--raise [N_CHAINS N_BETAS]: also the test log-likelihood by RAISE (reverse annealing from "
                        "each test image, natural_bm.estimators.raise_log_likelihood; default 10 chains x 1000 "
                        "betas): conservative, and needs no log Z; costs N_CHAINS x N_BETAS sweeps per image")
    z.add_argument("--raise-rows", type=int, default=None, metavar="N",
                   help="only the first N test rows for --raise (default all)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--json", action="store_true", help="print one JSON object")


def _sample_parser(sub) -> None:
    s = sub.add_parser("sample", help="write a grid of samples from a saved model",
                       description="Markov chains from a saved model, one row per chain, one column per "
                                   "snapshot (the visible means E[v | the rest]).")
    s.add_argument("model", help=MODEL_HELP)
    s.add_argument("--out", required=True, help="image file to write: .png, .jpg or .jpeg")
    s.add_argument("--n-chains", type=int, default=20, help="rows: how many chains (default 20)")
    s.add_argument("--n-samples", type=int, default=10, help="columns: snapshots of each chain (default 10)")
    s.add_argument("--every", type=int, default=2000, help="sweeps between snapshots (default 2000)")
    _renamed(s, "--chains", "--n-chains", "a count; a sampler's chains are the states themselves")
    _renamed(s, "--snapshots", "--n-samples", "as samples.n_samples in a config; snapshot is the command that packs "
                                               "a run")
    s.add_argument("--sampler", default="gibbs", choices=["gibbs", "pt"],
                   help="gibbs: block Gibbs chains; pt: parallel tempering (natural_bm.sampling.ParallelTempering, "
                        "its ladder tuned first to swap rates of 0.2 to 0.3, then fixed), whose beta = 1 chains "
                        "cross between modes where Gibbs chains stay in one")
    s.add_argument("--shape", default=None, help="tile shape HxW (default: square)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    _add_threads(s, "")


def _other_parsers(sub) -> None:
    _sample_parser(sub)
    m = sub.add_parser("summary", help="print the summary of a results folder or a shipped model",
                       description="Print summary.txt of a results folder (rebuilt from log.csv if missing), or "
                                   "what natural_bm.pretrained records of a shipped model.")
    m.add_argument("results_dir", help="a results folder of natural-bm train, or a shipped model's name")
    i = sub.add_parser("inspect", help="print statistics of a saved model's weights and biases",
                       description="One row per parameter: for weight matrices the largest |w| and the norms "
                                   "of columns (each unit's incoming weights, what max-norm bounds) and rows; "
                                   "for biases their range and how many lie beyond --pinned (units nearly "
                                   "always on or off unless their input is large: in a layer that DBM AIS "
                                   "samples, they make the annealing path steep).")
    i.add_argument("model", help=MODEL_HELP)
    i.add_argument("--pinned", type=float, default=10.0, help="bias magnitude counted as pinned (default 10)")
    i.add_argument("--json", action="store_true", help="print one JSON list")
    e = sub.add_parser("export", help="write a model as .npz or .safetensors, readable without torch",
                       description="Write MODEL as a portable file (natural_bm.models.export_model): the tensors and "
                                   "a JSON header that rebuilds the model (class, layers, units, topology, data set, "
                                   "checksum, library version), readable with numpy alone (.npz) or any "
                                   "safetensors reader. natural_bm.load_model and every command here read it back.")
    e.add_argument("model", help=MODEL_HELP)
    e.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="npz or safetensors (default: from --out's suffix)")
    e.add_argument("--out", default=None,
                   help="the file to write (default: MODEL with the format's suffix; for a shipped model, its name "
                        "in the current folder)")
    e.add_argument("--dataset", default=None,
                   help="the data set it was trained on, recorded in the header (default: a shipped model's data "
                        "set, a run's data section)")
    n = sub.add_parser("snapshot", help="pack an unfinished run into one file, to resume elsewhere",
                       description="Pack what `natural-bm train --resume` needs of a results folder (config, "
                                   "logs, the newest intact checkpoint; before the first one, the newest "
                                   "pre-training checkpoints) into one tar file, written atomically. Unpack it "
                                   "into an empty folder (tar -xf FILE -C DIR) and resume there.")
    n.add_argument("results_dir")
    n.add_argument("file", help="the tar file to write")
    d = sub.add_parser("demo", help="train the MNIST demo RBM (make demo)",
                       description="Train a 200-hidden-unit RBM on MNIST with PCD-1 (about 2 minutes on 2 CPU "
                                   "cores) and bracket its log Z by forward and reverse AIS; writes a results "
                                   "folder with samples, filters, training curves and results.json.")
    d.add_argument("--out")
    d.add_argument("--epochs", type=int, default=None)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="natural-bm", description="Boltzmann machines: train, estimate log Z, sample.")
    p.add_argument("--version", action="version", version=f"natural-bm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _logz_parser(sub)
    _other_parsers(sub)
    return p


# ---------------------------------------------------------------------------- what MODEL names
@dataclass(frozen=True)
class ModelSource:
    """What a MODEL argument names: the model file, the run that wrote it (its results folder and resolved
    config, where the folder's ``config.json`` is a run's), and the catalogue entry of a shipped model."""

    path: Path
    run_folder: Path | None = None
    run_config: dict | None = None
    shipped: pretrained.Pretrained | None = None


def model_source(arg: str) -> ModelSource:
    """Resolve a MODEL argument (see the module docstring); FileNotFoundError names what is missing."""
    if pretrained.is_name(arg):
        entry = next(e for e in pretrained.list() if e.path == pretrained.path(arg))
        return ModelSource(entry.path, shipped=entry)
    path = Path(arg)
    if path.is_dir():
        if not (path / MODEL_NAME).is_file():
            done = (path / "config.json").is_file()
            raise FileNotFoundError(f"{path} holds no {MODEL_NAME}" + (
                f": its run has not finished (natural-bm train --resume {path} continues it)" if done else
                ": give a model file, a results folder of natural-bm train or a shipped model's name") + ".")
        path = path / MODEL_NAME
    elif not path.exists():
        hint = ""
        if os.sep not in arg and "/" not in arg and not path.suffix:  # a name, mistyped?
            try:
                pretrained.path(arg)
            except ValueError as err:
                hint = f"; nor is it a shipped model's name: {first_line(err)}"
        raise FileNotFoundError(f"model file not found: {path}{hint}")
    cfg = _run_config(path.parent)
    return ModelSource(path, run_folder=None if cfg is None else path.parent, run_config=cfg)


def _run_config(folder: Path) -> dict | None:
    """The resolved config of the run in ``folder``, None where its ``config.json`` is missing or not a run's."""
    if not (folder / "config.json").is_file():
        return None
    try:
        return run.read_run_config(folder)
    except (run.ConfigError, ValueError):  # not a natural-bm train config (the demo's)
        return None


@contextmanager
def _torch_threads(n: int | None):
    """torch's CPU threads set to ``n`` (None: left as they are) for the block, and put back after."""
    before = torch.get_num_threads()
    if n is None:
        yield before
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def _verbose(args) -> int | str:
    return "auto" if args.verbose is None else args.verbose


def _train_config(args) -> tuple[dict, Path, bool]:
    """(config, results folder, resume) of ``natural-bm train``'s arguments."""
    if args.threads is not None:
        args.overrides.append(f"threads={args.threads}")
    if args.resume:
        folder = run.check_out_path(args.resume)
        if (folder / "config.json").is_file():
            if args.config is not None:
                print(f"natural-bm: --resume uses {folder / 'config.json'}; the config argument {args.config} is "
                      f"ignored.", file=sys.stderr)
            return run.read_run_config(folder, args.overrides), folder, True
        if args.config is None:
            run.read_run_config(folder)  # raises: says how to start a run there
        return _config_file(args), folder, True
    if args.config is None:
        raise CLIError("train needs a config file (natural-bm train CONFIG), or --resume RESULTS_DIR to continue "
                       "a run.")
    out = run.check_out_path(Path("results") / Path(args.config).stem if args.out is None else args.out)
    return _config_file(args), out, False


def _config_file(args) -> dict:
    """The config file of ``natural-bm train`` with its ``--set`` overrides, resolved."""
    return run.resolve_config(run.apply_overrides(run.read_raw_config(args.config), args.overrides))


def _cmd_train(args) -> int:
    signals = list(DEFAULT_SIGNALS) + ([args.signal] if args.signal else [])
    with Preemption(signals) as preemption:
        cfg, out, resume = _train_config(args)
        try:
            results = run.train(cfg, out, resume=resume, verbose=_verbose(args), preemption=preemption)
        except Preempted as err:  # outside the fit loop (loading, finishing): every file written is whole
            print(f"natural-bm: {err}; continue with: natural-bm train --resume {out}", file=sys.stderr)
            return EXIT_PREEMPTED
    if writes_files():  # one report for all ranks of a torchrun
        print(json.dumps(results))
        print(f"results in {out.resolve()}")
    if results.get("status") == run.STATUS_DIVERGED:
        print(f"natural-bm: training stopped: {results.get('stop_reason')}; model.pt was not written. "
              f"Resume from the last finite checkpoint (epoch {results.get('last_finite_epoch')}) with "
              f"--resume {out} after lowering the learning rate in {out / 'config.json'}.", file=sys.stderr)
        return EXIT_DIVERGED
    if results.get("status") == run.STATUS_PREEMPTED:
        epoch = results.get("resume_from_epoch")
        where = "its start" if epoch is None else f"the checkpoint of epoch {epoch}"
        print(f"natural-bm: {results['stop_reason']}; continue from {where} with: natural-bm train --resume {out}",
              file=sys.stderr)
        return EXIT_PREEMPTED
    return 0


# ---------------------------------------------------------------------------- logz
DATA_FILE_SUFFIXES = (".npy", ".npz", ".csv")


def _run_file_rows(path: Path, cfg: dict) -> np.ndarray:
    """The rows of a data file read as the run of ``cfg`` read its files (``natural_bm.datasets.load_files``:
    the npz key of ``data.key``, the binarisation of its test rows)."""
    d = cfg["data"]
    kind = d["eval_kind"] if d["kind"] == "stochastic" else d["kind"]
    key = d["key"] if d["name"] == "files" else None
    return load_files(path, key=key, kind=kind, seed=cfg["seed"])[0]


def evaluation_splits(source: ModelSource, data: str | None, kind: str) -> tuple[str, dict]:
    """(what the data is, ``{split: rows}``) for ``natural-bm logz`` (``--data``'s help says which)."""
    cfg = source.run_config
    if data is None and source.shipped is not None:
        name, splits = run.evaluation_data("mnist", source.path, kind)
        return f"{name}; {source.shipped.name} was trained on {source.shipped.dataset}", splits
    if data is not None and cfg is not None and Path(data).suffix.lower() in DATA_FILE_SUFFIXES:
        return f"{data} (read as the run in {source.run_folder} read its files)", {
            "test": _run_file_rows(Path(data), cfg)}
    return run.evaluation_data(data, source.path, kind)


def _raise_settings(args) -> RaiseAIS | None:
    if args.raise_ais is None:
        return None
    if len(args.raise_ais) not in (0, 2):
        raise CLIError(f"--raise takes no numbers or two (N_CHAINS N_BETAS), got {len(args.raise_ais)}.")
    if any(n < 1 for n in args.raise_ais) or (args.raise_ais and args.raise_ais[1] < 2):
        raise CLIError(f"--raise N_CHAINS N_BETAS needs N_CHAINS >= 1 and N_BETAS >= 2, got {args.raise_ais}.")
    return RaiseAIS(*args.raise_ais, rows=args.raise_rows)


def logz_report(args) -> tuple[dict, str]:
    """What ``natural-bm logz`` prints, from its parsed arguments: (the JSON dict, nats; the text)."""
    run.check_device(args.device)
    source = model_source(args.model)
    raise_ais = _raise_settings(args)
    with _torch_threads(args.threads) as threads:
        model = load_model(source.path, device=args.device)
        name, splits = evaluation_splits(source, args.data, args.kind)
        if raise_ais is not None and splits.get("test") is None:
            raise CLIError("--raise anneals from test rows, and there are none: name the data with --data (mnist, a "
                           "data file, a config).")
        train = splits.get("train")
        base = train if train is not None else splits.get("test")
        posterior = None if args.posterior_ais is None else PosteriorAIS(*args.posterior_ais,
                                                                          rows=args.posterior_rows)
        report = evaluate_model(
            model, data=splits, base_data=base,
            ais=AISRuns(args.n_runs, args.n_betas, args.parity if args.parity == "auto" else int(args.parity),
                        args.seed),
            exact=args.exact, reverse=ReverseAIS(data=base) if args.reverse else None,
            importance_samples=args.importance_samples, posterior=posterior, raise_ais=raise_ais, seed=args.seed,
            data_name=name, progress=sys.stderr.isatty())
    values = {"model": str(source.path), **report.to_dict(), "threads": threads}
    lines = [str(report), f"threads: {threads}"]
    if source.shipped is not None:
        values["pretrained"] = source.shipped.name
        if source.shipped.results:
            lines.append(f"as shipped ({source.shipped.name}): {pretrained.describe_results(source.shipped.results)}")
    return values, "\n".join(lines)


def _cmd_logz(args) -> int:
    values, text = logz_report(args)
    print(json.dumps(values) if args.json else text)
    return 0


# ---------------------------------------------------------------------------- sample, inspect, export, summary
def _tile_shape(spec: str | None, n_input: int) -> tuple[int, int]:
    if spec:
        try:
            shape = tuple(int(v) for v in spec.lower().split("x"))
        except ValueError:
            raise CLIError(f"--shape must look like 28x28, got {spec!r}.") from None
    else:
        side = math.isqrt(n_input)
        if side * side != n_input:
            raise CLIError(f"the model has {n_input} visible units, not a square: pass --shape HxW.")
        shape = (side, side)
    if len(shape) != 2 or shape[0] * shape[1] != n_input:
        raise CLIError(f"--shape {spec} does not cover the model's {n_input} visible units.")
    return shape


def _gibbs_grid(model, args, shape) -> Path:
    cb = SampleCallback(model, args.out, n_chains=args.n_chains, n_samples=args.n_samples, plot_every=args.every,
                        image_shape=shape, seed=args.seed)
    cb.params = {}
    cb.savename = args.out  # exact file name, no epoch suffix
    path = cb.sample(0)
    final = Path(args.out)
    if path != final:
        path.replace(final)
    return final


def _tempering_grid(model, args, shape) -> tuple[Path, str]:
    """The grid of the beta = 1 chains of parallel tempering, started from noise as Gibbs's are, on a ladder
    tuned first (``ParallelTempering.tune``: rounds of 200 steps until every pair swaps at 0.2 to 0.3) and
    then fixed while sampling; returns (path, the ladder and its swap rates in words)."""
    gen = RandomSource(args.seed, model.device)
    pt = ParallelTempering(model)
    with torch.no_grad():
        noise = torch.zeros(args.n_chains, model.n_visible, device=model.device, dtype=model.dtype)
        pt.init_chains(model.units[0].sample(noise, 1.0, gen), gen)
        pt.tune(generator=gen)
        snapshots = [model.prob_layer(0, pt.run(args.every, gen)) for _ in range(args.n_samples)]
    tiles = torch.stack(snapshots, 1).reshape(-1, model.n_visible).cpu().double().numpy()
    scale = tile_scale(shape)  # as SampleCallback's: tiny tiles enlarged
    image_grid(tiles, shape, n_cols=args.n_samples, path=args.out, scale=scale, normalize=not model.binary_visible)
    rates = pt.swap_rates()
    return Path(args.out), (f"parallel tempering: {pt.n_temperatures} temperatures from beta 1 to "
                            f"{float(pt.betas[-1]):.3g} (tuned in {pt.ladder_changes} changes), swap rates "
                            f"{float(rates.min()):.2f} to {float(rates.max()):.2f} while sampling")


def _cmd_sample(args) -> int:
    image_format(args.out)
    run.check_device(args.device)
    source = model_source(args.model)
    with _torch_threads(args.threads):
        model = load_model(source.path, device=args.device)
        shape = _tile_shape(args.shape, model.n_input)
        if args.sampler == "pt":
            path, ladder = _tempering_grid(model, args, shape)
            print(ladder)
        else:
            path = _gibbs_grid(model, args, shape)
    print(f"wrote {path}")
    return 0


def _cmd_inspect(args) -> int:
    rows = parameter_stats(load_model(model_source(args.model).path), pinned=args.pinned)
    print(json.dumps(rows) if args.json else format_parameter_stats(rows), end="\n" if args.json else "")
    return 0


def _export_target(args, source: ModelSource) -> tuple[Path, str]:
    """(the file to write, its format) of ``natural-bm export``."""
    if args.out is not None:
        out = Path(args.out)
        fmt = args.format or next((f for f, ext in FORMATS.items() if out.suffix.lower() == ext), None)
        if fmt is None:
            raise CLIError(f"--format npz or safetensors: {out} has no suffix that names one.")
        return out, fmt
    if args.format is None:
        raise CLIError("export needs --format npz or safetensors (or --out with one of those suffixes).")
    if source.shipped is not None:  # in the current folder, not inside the installed package
        return Path(source.shipped.name + FORMATS[args.format]), args.format
    return source.path.with_suffix(FORMATS[args.format]), args.format


def _cmd_export(args) -> int:
    source = model_source(args.model)
    out, fmt = _export_target(args, source)
    if out.resolve() == source.path.resolve():
        raise CLIError(f"--out {out} is the model file itself; name another file.")
    dataset = args.dataset
    if dataset is None and source.shipped is not None:
        dataset = source.shipped.dataset
    elif dataset is None and source.run_folder is not None:
        dataset = data_description(source.run_config)
    path = export_model(source.path, out, format=fmt, dataset=dataset)
    print(f"wrote {path} ({fmt}" + (f"; data set: {json.dumps(dataset)}" if dataset is not None else "") + ")")
    return 0


def _cmd_snapshot(args) -> int:
    path, names = run.snapshot(args.results_dir, args.file)
    print(f"wrote {path}: " + ", ".join(names))
    return 0


def _shipped_summary(entry: pretrained.Pretrained) -> str:
    lines = [f"{entry.name}: {entry.description}", f"data set: {entry.dataset}",
             f"file: {entry.path if entry.path is not None else entry.source + ' (in a source checkout)'}"]
    if entry.results:
        lines.append(f"results: {pretrained.describe_results(entry.results)}")
    return "\n".join(lines) + "\n"


def _cmd_summary(args) -> int:
    folder = Path(args.results_dir)
    if not folder.exists() and pretrained.is_name(args.results_dir):
        print(_shipped_summary(model_source(args.results_dir).shipped), end="")
        return 0
    if (folder / "summary.txt").is_file():
        print((folder / "summary.txt").read_text(), end="")
        return 0
    if not (folder / "log.csv").is_file():
        raise FileNotFoundError(f"{folder} has neither summary.txt nor log.csv.")
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else None
    print(summarize(history_frame(folder / "log.csv"), cfg)[0], end="")
    return 0


def _cmd_demo(args) -> int:
    demo.run(args.out, **({"epochs": args.epochs} if args.epochs else {}))
    return 0


def _one_line(err: BaseException) -> str:
    """The error as one line: OSErrors as 'what: file', anything multi-line joined."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {err.filename}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


COMMANDS = {"train": _cmd_train, "logz": _cmd_logz, "sample": _cmd_sample, "summary": _cmd_summary,
            "snapshot": _cmd_snapshot, "inspect": _cmd_inspect, "export": _cmd_export, "demo": _cmd_demo}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except CLIError as err:  # a retired flag: its new name
        print(f"natural-bm: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.command in ("train", "logz"):  # under torchrun: join the process group (data-parallel)
            if distributed.init_from_environment() and distributed.rank() != 0:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - one report, rank 0's, for all ranks
        return COMMANDS[args.command](args)
    except Preempted as err:
        print(f"natural-bm: {err}; continue with: natural-bm train --resume RESULTS_DIR", file=sys.stderr)
        return EXIT_PREEMPTED
    except (CLIError, OSError, ValueError, ImportError, LockedError) as err:
        print(f"natural-bm: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        hint = " (continue with: natural-bm train --resume RESULTS_DIR)" if args.command == "train" else ""
        print(f"natural-bm: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
