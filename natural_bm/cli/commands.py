"""The commands of ``natural-bm``: train, logz, sample, inspect, export, snapshot, summary, demo."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

import natural_bm.pretrained as pretrained
import natural_bm.run as run
from natural_bm import demo
from natural_bm.callbacks import SampleCallback
from natural_bm.callbacks.summary_callback import summarize
from natural_bm.cli.errors import EXIT_DIVERGED, CLIError
from natural_bm.cli.sources import ModelSource, _torch_threads, model_source
from natural_bm.estimators.report import AISRuns, PosteriorAIS, RaiseAIS, ReverseAIS, evaluate_model
from natural_bm.io import writes_files
from natural_bm.models import export_model, load_model
from natural_bm.models.portable import FORMATS
from natural_bm.rng import RandomSource
from natural_bm.run.data import data_description
from natural_bm.run.preemption import DEFAULT_SIGNALS, EXIT_PREEMPTED, Preempted, Preemption
from natural_bm.sampling import ParallelTempering
from natural_bm.viz import history_frame, image_grid
from natural_bm.viz.images import image_format, tile_scale
from natural_bm.viz.parameters import format_parameter_stats, parameter_stats


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


def evaluation_splits(source: ModelSource, data: str | None, kind: str) -> tuple[str, dict]:
    """(what the data is, ``{split: rows}``) for ``natural-bm logz`` (``--data``'s help says which)."""
    cfg = source.run_config
    if data is None and source.shipped is not None:
        name, splits = run.evaluation_data("mnist", source.path, kind)
        return f"{name}; {source.shipped.name} was trained on {source.shipped.dataset}", splits
    if data is not None and cfg is not None and Path(data).suffix.lower() in DATA_FILE_SUFFIXES:
        return f"{data} (read as the run in {source.run_folder} read its files)", {
            "test": run.run_file_rows(Path(data), cfg, source.run_folder)}  # the run's key, binarisation, transform
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


def _cmd_demo(args) -> int:
    demo.run(args.out, **({"epochs": args.epochs} if args.epochs else {}))
    return 0


COMMANDS = {"train": _cmd_train, "logz": _cmd_logz, "sample": _cmd_sample, "summary": _cmd_summary,
            "snapshot": _cmd_snapshot, "inspect": _cmd_inspect, "export": _cmd_export, "demo": _cmd_demo}
