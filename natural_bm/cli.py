"""The ``natural-bm`` command: train, logz, sample, summary, inspect, snapshot, demo.

Exit status: 0 done; 2 an error (missing or damaged file, bad config key
or value, unavailable device, results folder in use, unwritable or full
disk...), printed as one line ``natural-bm: error: ...`` on stderr; 3 a
``train`` whose weights diverged (``TerminateOnNaN``): ``results.json`` and
``summary.txt`` say so and ``--resume`` continues from the last finite
checkpoint; 130 interrupted (Ctrl-C). Every file is written atomically, so
an error, a kill or Ctrl-C never leaves half a file; an interrupted
``train`` resumes with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from pathlib import Path

from natural_bm.io import LockedError


class CLIError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    from natural_bm import __version__

    p = argparse.ArgumentParser(prog="natural-bm", description="Boltzmann machines: train, estimate log Z, sample.")
    p.add_argument("--version", action="version", version=f"natural-bm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train from a JSON/YAML config into a results folder",
                       description=textwrap.fill(
                           "Train from a JSON or YAML config into a results folder. The config's sections and "
                           "keys, with their defaults (every key but model is optional; details in "
                           "natural_bm/runner.py):", 79) + "\n\n" + _config_keys(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", default=None,
                   help="JSON or YAML config file (not needed with --resume, which reads the run's config.json)")
    t.add_argument("--out", help="results folder (default results/<config name>)")
    t.add_argument("--resume", metavar="RESULTS_DIR", help="continue an interrupted run from its last checkpoint")
    t.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2],
                   help="0 silent, 1 progress bars, 2 one line per epoch (default: 1 on a terminal, else 2)")

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
    z.add_argument("--data", choices=["mnist", "none"], default=None,
                   help="data for the base model and log-likelihoods (default: from config.json beside the model, "
                        "else mnist for 784 visible units)")
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
    return p


def _config_keys() -> str:
    """The config sections and their keys with defaults, one section a line (for train --help)."""
    from natural_bm.runner import DEFAULTS

    lines = []
    for section, value in DEFAULTS.items():
        if isinstance(value, dict):
            keys = ", ".join(f"{k}={json.dumps(v)}" for k, v in value.items())
            lines.append(f"  {section}: {keys}")
        else:
            lines.append(f"  {section}: {json.dumps(value)}")
    return "\n".join(lines)


def _verbose(args) -> int | str:
    return "auto" if args.verbose is None else args.verbose


def _cmd_train(args) -> int:
    from natural_bm import runner

    if args.resume:
        if args.config is not None:
            print(f"natural-bm: --resume uses {args.resume}/config.json; the config argument "
                  f"{args.config} is ignored.", file=sys.stderr)
        folder = runner.check_out_path(args.resume)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder / 'config.json'} not found: --resume needs a results folder.")
        cfg = runner.read_config(folder / "config.json")
        results = runner.train(cfg, folder, resume=True, verbose=_verbose(args))
        out = folder
    else:
        if args.config is None:
            raise CLIError("train needs a config file (natural-bm train CONFIG), "
                           "or --resume RESULTS_DIR to continue a run.")
        cfg = runner.read_config(args.config)
        out = runner.check_out_path(Path("results") / Path(args.config).stem if args.out is None else args.out)
        results = runner.train(cfg, out, verbose=_verbose(args))
    from natural_bm.io import writes_files

    if writes_files():  # one report for all ranks of a torchrun
        print(json.dumps(results))
        print(f"results in {out.resolve()}")
    if results.get("status") == runner.STATUS_DIVERGED:
        print(f"natural-bm: training stopped: {results.get('stop_reason')}; model.pt was not written. "
              f"Resume from the last finite checkpoint (epoch {results.get('last_finite_epoch')}) with "
              f"--resume {out} after lowering the learning rate in {out / 'config.json'}.", file=sys.stderr)
        return 3
    return 0


def _fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def logz_report(model_path, exact=False, runs=100, betas=None, reverse=False, device="cpu", data=None,
                kind="sampled", seed=0, parity="auto", importance_samples=None, posterior_ais=None,
                posterior_rows=None) -> dict:
    """What ``natural-bm logz`` prints, as a dict (nats). ``posterior_ais``: (chains, betas) for the test
    log-likelihood by per-image AIS (``log_prob_ais``), on the first ``posterior_rows`` test rows (all: None);
    with ``importance_samples`` the importance-sampled figure of those rows is reported beside it."""
    from natural_bm import load_model
    from natural_bm.estimators import AIS, log_likelihood, log_partition_exact
    from natural_bm.runner import check_device

    check_device(device)
    model = load_model(model_path, device=device)
    cfg_path = Path(model_path).parent / "config.json"
    splits = {}
    if data is None:
        data = "mnist" if model.n_input == 784 else "none"
        if cfg_path.is_file():
            cfg = json.loads(cfg_path.read_text())
            data = cfg.get("data", {}).get("name", data)
            if data in ("bars_and_stripes", "files"):
                from natural_bm.runner import load_data, resolve_config

                x, valid, test, _ = load_data(resolve_config(cfg))
                splits = {"train": x, "valid": valid, "test": test}
    if data == "mnist":
        from natural_bm.datasets import load_mnist

        d = load_mnist(kind)
        splits = {"train": d.train, "valid": d.valid, "test": d.test}
    train = splits.get("train")
    ais = AIS(model, data=train, n_runs=runs, n_betas=betas, base="data" if train is not None else "uniform",
              seed=seed, progress=sys.stderr.isatty(), parity=parity)
    z, lo, hi = ais.estimate_log_error_Z()
    out = {"model": str(model_path), "logZ": z, "logZ_lo": lo, "logZ_hi": hi, "ais_ess": ais.ess, "runs": runs,
           "betas": len(ais.betas), "annealed_layers": ais.annealed_layers}
    if reverse:
        from natural_bm.estimators.ais import describe_bracket

        out["logZ_reverse"] = ais.run_reverse(data=train)
        out["ais_ess_reverse"] = ais.ess_reverse
        out["bracket"] = describe_bracket(z, out["logZ_reverse"])
    if exact:
        try:
            out["logZ_exact"] = log_partition_exact(model, progress=False)
        except ValueError as err:
            out["logZ_exact"] = None
            out["exact_error"] = str(err)
    for name, x in splits.items():
        if x is None:
            continue
        ll, se = log_likelihood(model, x, z)
        out[f"{name}_ll"], out[f"{name}_ll_stderr"] = ll, se
        if out.get("logZ_exact") is not None:
            out[f"{name}_ll_exact"] = log_likelihood(model, x, out["logZ_exact"])[0]
        if importance_samples is not None:
            ll, se = log_likelihood(model, x, z, importance_samples=importance_samples, seed=seed)
            out[f"{name}_ll_importance"], out[f"{name}_ll_importance_stderr"] = ll, se
            if reverse:  # the conservative one: reverse AIS's log Z is biased high
                out[f"{name}_ll_importance_reverse"] = ll - (out["logZ_reverse"] - z)
    if importance_samples is not None:
        out["importance_samples"] = importance_samples
    if posterior_ais is not None and splits.get("test") is not None:
        chains, n_betas = posterior_ais
        x = splits["test"][:posterior_rows]
        ll, se = log_likelihood(model, x, z, ais_chains=chains, ais_betas=n_betas, seed=seed)
        out.update(posterior_ais_chains=chains, posterior_ais_betas=n_betas, posterior_rows=len(x),
                   test_ll_posterior_ais=ll, test_ll_posterior_ais_stderr=se)
        if importance_samples is not None:  # the figure above when the rows are the whole test set
            out["test_ll_importance_same_rows"] = (out["test_ll_importance"] if len(x) == len(splits["test"]) else
                                                   log_likelihood(model, x, z, importance_samples=importance_samples,
                                                                  seed=seed)[0])
    return out


def _cmd_logz(args) -> int:
    r = logz_report(args.model, args.exact, args.runs, args.betas, args.reverse, args.device, args.data,
                    args.kind, args.seed, args.parity if args.parity == "auto" else int(args.parity),
                    args.importance_samples, args.posterior_ais, args.posterior_rows)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"log Z (AIS, {r['runs']} runs x {r['betas']} betas, layers {r['annealed_layers']} annealed): "
          f"{_fmt(r['logZ'])} "
          f"[-3 sigma {_fmt(r['logZ_lo'])}, +3 sigma {_fmt(r['logZ_hi'])}] nats, "
          f"{r['ais_ess']:.1f} effective runs")
    if "logZ_reverse" in r:
        print(f"log Z (reverse AIS): {_fmt(r['logZ_reverse'])} nats; {r['bracket']}")
    if "logZ_exact" in r:
        print(f"log Z (exact): {_fmt(r['logZ_exact']) if r['logZ_exact'] is not None else r['exact_error']}")
    for name in ("train", "valid", "test"):
        if f"{name}_ll" in r:
            extra = f" (exact log Z: {_fmt(r[name + '_ll_exact'])})" if f"{name}_ll_exact" in r else ""
            print(f"{name} log-likelihood: {_fmt(r[name + '_ll'])} ± {_fmt(r[name + '_ll_stderr'])} nats{extra}")
        if f"{name}_ll_importance" in r:
            rev = (f" ({_fmt(r[name + '_ll_importance_reverse'])} with the reverse log Z)"
                   if f"{name}_ll_importance_reverse" in r else "")
            print(f"{name} log-likelihood, importance-sampled ({r['importance_samples']} draws): "
                  f"{_fmt(r[name + '_ll_importance'])} ± {_fmt(r[name + '_ll_importance_stderr'])} nats{rev}")
    if "test_ll_posterior_ais" in r:
        same = (f"; importance-sampled on the same rows: {_fmt(r['test_ll_importance_same_rows'])}"
                if "test_ll_importance_same_rows" in r else "")
        print(f"test log-likelihood, per-image AIS ({r['posterior_ais_chains']} chains x {r['posterior_ais_betas']} "
              f"betas, first {r['posterior_rows']} rows): {_fmt(r['test_ll_posterior_ais'])} ± "
              f"{_fmt(r['test_ll_posterior_ais_stderr'])} nats{same}")
    return 0


def _cmd_sample(args) -> int:
    from natural_bm import load_model
    from natural_bm.callbacks import SampleCallback
    from natural_bm.runner import check_device
    from natural_bm.viz.images import image_format

    image_format(args.out)
    check_device(args.device)
    model = load_model(args.model, device=args.device)
    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.lower().split("x"))
        except ValueError:
            raise CLIError(f"--shape must look like 28x28, got {args.shape!r}.") from None
    else:
        side = math.isqrt(model.n_input)
        if side * side != model.n_input:
            raise CLIError(f"the model has {model.n_input} visible units, not a square: pass --shape HxW.")
        shape = (side, side)
    if len(shape) != 2 or shape[0] * shape[1] != model.n_input:
        raise CLIError(f"--shape {args.shape} does not cover the model's {model.n_input} visible units.")
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
    from natural_bm import load_model
    from natural_bm.viz.parameters import format_parameter_stats, parameter_stats

    rows = parameter_stats(load_model(args.model), pinned=args.pinned)
    if args.json:
        print(json.dumps(rows))
    else:
        print(format_parameter_stats(rows), end="")
    return 0


def _cmd_snapshot(args) -> int:
    from natural_bm.runner import snapshot

    path, names = snapshot(args.results_dir, args.file)
    print(f"wrote {path}: " + ", ".join(names))
    return 0


def _cmd_summary(args) -> int:
    folder = Path(args.results_dir)
    if (folder / "summary.txt").is_file():
        print((folder / "summary.txt").read_text(), end="")
        return 0
    if not (folder / "log.csv").is_file():
        raise FileNotFoundError(f"{folder} has neither summary.txt nor log.csv.")
    from natural_bm.callbacks.summary_callback import summarize
    from natural_bm.viz import history_frame

    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else None
    print(summarize(history_frame(folder / "log.csv"), cfg)[0], end="")
    return 0


def _one_line(err: BaseException) -> str:
    """The error as one line: OSErrors as 'what: file', anything multi-line joined."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {err.filename}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("train", "logz"):  # under torchrun: join the process group (data-parallel)
            from natural_bm import distributed

            if distributed.init_from_environment() and distributed.rank() != 0:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - one report, rank 0's, for all ranks
        if args.command == "demo":
            from natural_bm import demo

            demo.run(args.out, **({"epochs": args.epochs} if args.epochs else {}))
            return 0
        return {"train": _cmd_train, "logz": _cmd_logz, "sample": _cmd_sample, "summary": _cmd_summary,
                "snapshot": _cmd_snapshot, "inspect": _cmd_inspect}[args.command](args)
    except (CLIError, OSError, ValueError, ImportError, LockedError) as err:
        print(f"natural-bm: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = " (continue with: natural-bm train --resume RESULTS_DIR)" if args.command == "train" else ""
        print(f"natural-bm: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
