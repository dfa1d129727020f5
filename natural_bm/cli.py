"""The ``natural-bm`` command: train, logz, sample, summary, inspect, snapshot, demo.

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
from pathlib import Path

import natural_bm.run as run
from natural_bm import __version__, demo, distributed, load_model
from natural_bm.callbacks import SampleCallback
from natural_bm.callbacks.summary_callback import summarize
from natural_bm.estimators.report import AISRuns, PosteriorAIS, ReverseAIS, evaluate_model
from natural_bm.io import LockedError, writes_files
from natural_bm.run.preemption import DEFAULT_SIGNALS, EXIT_PREEMPTED, Preempted, Preemption
from natural_bm.viz import history_frame
from natural_bm.viz.images import image_format
from natural_bm.viz.parameters import format_parameter_stats, parameter_stats

__all__ = ["CLIError", "EXIT_DIVERGED", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_PREEMPTED", "main"]

EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


class CLIError(Exception):
    pass


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
    t.add_argument("--signal", default=None, metavar="SIGNAL",
                   help=f"also stop on this signal, e.g. SIGUSR2 ({' and '.join(DEFAULT_SIGNALS)} always stop: "
                        f"exit status {EXIT_PREEMPTED})")
    t.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2],
                   help="0 silent, 1 progress bars, 2 one line per epoch (default: 1 on a terminal, else 2)")


def _logz_parser(sub) -> None:
    z = sub.add_parser("logz", help="estimate log Z and log-likelihoods of a saved model",
                       description="AIS (and exact, where feasible) log Z of a saved model, with the "
                                   "train/valid/test log-likelihoods (nats per image) they imply.")
    z.add_argument("model", help="model file written by model.save / natural-bm train")
    z.add_argument("--exact", action="store_true", help="also compute the exact log Z by enumeration")
    z.add_argument("--runs", type=int, default=100, help="AIS runs (default 100)")
    z.add_argument("--betas", type=int, default=None, help="number of betas (default: the 14,501 schedule)")
    z.add_argument("--reverse", action="store_true",
                   help="also run reverse AIS (with forward AIS a bracket on log Z, when the two do not cross)")
    z.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    z.add_argument("--parity", default="auto", choices=["auto", "0", "1"],
                   help="layers to anneal, the others summed out: 0 the even ones (v, h2, ...), 1 the odd ones; "
                        "auto: v for an RBM, the parity with fewer units for a DBM (h1 of 784-500-1000)")
    z.add_argument("--data", default=None, metavar="DATA",
                   help="the data of the base model and log-likelihoods: mnist, none, a .npy/.npz/.csv file (its "
                        "rows reported as test), or a config file (its splits); default: the config.json beside "
                        "the model (the run that wrote it), else name one")
    z.add_argument("--kind", default="sampled", help="MNIST kind for the log-likelihoods (default sampled)")
    z.add_argument("--importance-samples", type=int, default=None, metavar="K",
                   help="also the log-likelihoods with log p*(v) importance-sampled from K draws of the even hidden "
                        "layers (DBMs: a stochastic lower bound, tighter than the mean-field bound)")
    z.add_argument("--posterior-ais", type=int, nargs=2, default=None, metavar=("CHAINS", "BETAS"),
                   help="also the test log-likelihood with log p*(v) from per-image AIS (CHAINS runs of BETAS betas "
                        "from the mean-field posterior; natural_bm.estimators.log_prob_ais): a check on the "
                        "importance-sampled figure; about 1e6 multiply-adds per image, chain and beta for 784-500-1000")
    z.add_argument("--posterior-rows", type=int, default=None, metavar="N",
                   help="only the first N test rows for --posterior-ais (default all)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--json", action="store_true", help="print one JSON object")


def _other_parsers(sub) -> None:
    s = sub.add_parser("sample", help="write a grid of samples from a saved model",
                       description="Persistent Gibbs chains from a saved model, one row per chain, one "
                                   "column per snapshot.")
    s.add_argument("model", help="model file")
    s.add_argument("--out", required=True, help="image file to write: .png, .jpg or .jpeg")
    s.add_argument("--chains", type=int, default=20, help="rows (chains)")
    s.add_argument("--snapshots", type=int, default=10, help="columns (snapshots)")
    s.add_argument("--every", type=int, default=2000, help="Gibbs steps between snapshots")
    s.add_argument("--shape", default=None, help="tile shape HxW (default: square)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    m = sub.add_parser("summary", help="print the summary of a results folder",
                       description="Print summary.txt of a results folder (rebuilt from log.csv if missing).")
    m.add_argument("results_dir")
    i = sub.add_parser("inspect", help="print statistics of a saved model's weights and biases",
                       description="One row per parameter: for weight matrices the largest |w| and the norms "
                                   "of columns (each unit's incoming weights, what max-norm bounds) and rows; "
                                   "for biases their range and how many lie beyond --pinned (units nearly "
                                   "always on or off unless their input is large: in a layer that DBM AIS "
                                   "samples, they make the annealing path steep).")
    i.add_argument("model", help="model file")
    i.add_argument("--pinned", type=float, default=10.0, help="bias magnitude counted as pinned (default 10)")
    i.add_argument("--json", action="store_true", help="print one JSON list")
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


def _verbose(args) -> int | str:
    return "auto" if args.verbose is None else args.verbose


def _train_config(args) -> tuple[dict, Path, bool]:
    """(config, results folder, resume) of ``natural-bm train``'s arguments."""
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


def logz_report(args) -> tuple[dict, str]:
    """What ``natural-bm logz`` prints, from its parsed arguments: (the JSON dict, nats; the text)."""
    run.check_device(args.device)
    model = load_model(args.model, device=args.device)
    name, splits = run.evaluation_data(args.data, args.model, args.kind)
    train = splits.get("train")
    base = train if train is not None else splits.get("test")
    posterior = None if args.posterior_ais is None else PosteriorAIS(*args.posterior_ais, rows=args.posterior_rows)
    report = evaluate_model(
        model, data=splits, base_data=base,
        ais=AISRuns(args.runs, args.betas, args.parity if args.parity == "auto" else int(args.parity), args.seed),
        exact=args.exact, reverse=ReverseAIS(data=base) if args.reverse else None,
        importance_samples=args.importance_samples, posterior=posterior, seed=args.seed, data_name=name,
        progress=sys.stderr.isatty())
    return {"model": str(args.model), **report.to_dict()}, str(report)


def _cmd_logz(args) -> int:
    values, text = logz_report(args)
    print(json.dumps(values) if args.json else text)
    return 0


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


def _cmd_sample(args) -> int:
    image_format(args.out)
    run.check_device(args.device)
    model = load_model(args.model, device=args.device)
    shape = _tile_shape(args.shape, model.n_input)
    cb = SampleCallback(model, args.out, n_chains=args.chains, n_samples=args.snapshots, plot_every=args.every,
                        image_shape=shape, seed=args.seed)
    cb.params = {}
    cb.savename = args.out  # exact file name, no epoch suffix
    path = cb.sample(0)
    final = Path(args.out)
    if path != final:
        path.replace(final)
    print(f"wrote {final}")
    return 0


def _cmd_inspect(args) -> int:
    rows = parameter_stats(load_model(args.model), pinned=args.pinned)
    print(json.dumps(rows) if args.json else format_parameter_stats(rows), end="\n" if args.json else "")
    return 0


def _cmd_snapshot(args) -> int:
    path, names = run.snapshot(args.results_dir, args.file)
    print(f"wrote {path}: " + ", ".join(names))
    return 0


def _cmd_summary(args) -> int:
    folder = Path(args.results_dir)
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
            "snapshot": _cmd_snapshot, "inspect": _cmd_inspect, "demo": _cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
