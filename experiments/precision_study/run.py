"""Does bfloat16 training cost likelihood? (issue 32)

Trains two recipes in both precisions (``training.precision``: float32, bfloat16) with three seeds each,
and writes ``precision.json`` beside this file:

* the demo recipe (``natural_bm.demo``: RBM 784-200, PCD-1, 30 epochs of MNIST binarised per minibatch;
  forward AIS at the last epoch, reverse AIS from tempering chains);
* 20 epochs of ``experiments/rbm_mnist_sm2008/rbm500_cd25.yaml`` (RBM 784-500, CD-k with k growing,
  forward and reverse AIS at the end), through ``natural-bm train``.

For each run: the test log-likelihood (nats, once-binarised test set) with the forward log Z, the
conservative one with the reverse log Z, the bracket, the run's wall time and the training's (its
epochs with their monitors, without the final AIS; and per epoch). For each recipe and
precision: the mean and the spread (max - min) over the seeds; the verdict keeps bfloat16 when its mean is
within float32's run-to-run spread of float32's mean (the issue's rule).

On a CPU without bfloat16 products ``training.precision: bfloat16`` falls back to float32 (a warning,
and the float32 run's numbers); ``--precisions float32 bfloat16-emulated`` studies bfloat16's numerics
there (operands and results rounded to bfloat16, computed in float32: the same numbers up to the order
of the float32 sums). ``--resume`` keeps the runs already in the JSON and runs the missing ones.

Needs MNIST in $NATURAL_BM_DATA. About an hour on 2 quiet cores; ``--quick`` (1 epoch, 2,000 training
rows, 201 betas, one seed) checks the script in a few minutes and writes ``precision_quick.json`` in --out.

``--refresh`` reads the finished run folders in --out again into the JSON (its wall times kept).

Usage: python experiments/precision_study/run.py [--out runs/precision] [--seeds 0 1 2] [--quick]
       [--precisions float32 bfloat16] [--resume] [--refresh]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from natural_bm import demo
from natural_bm.io import atomic_write_text
from natural_bm.run.provenance import git_commit

HERE = Path(__file__).resolve().parent
CD25 = HERE.parent / "rbm_mnist_sm2008" / "rbm500_cd25.yaml"
PRECISIONS = ("float32", "bfloat16")  # the default; "bfloat16-emulated" where the CPU has no bfloat16


def training_seconds(folder: Path, results: dict) -> float | None:
    """The training's wall time (its epochs and their monitors, without the final AIS): the demo's
    ``seconds_training``, or the ``wall time`` line of a ``natural-bm train`` run's ``summary.txt``."""
    if isinstance(results.get("seconds_training"), int | float):
        return float(results["seconds_training"])
    summary = folder / "summary.txt"
    lines = summary.read_text().splitlines() if summary.is_file() else []
    walls = [line.split(":", 1)[1].strip().split()[0] for line in lines if line.startswith("wall time:")]
    return float(walls[-1]) if walls else None


def _figures(folder: Path, seconds: float, epochs: int) -> dict:
    results = json.loads((folder / "results.json").read_text())
    train = training_seconds(folder, results)
    return {"test_ll": results.get("test_ll"), "test_ll_stderr": results.get("test_ll_stderr"),
            "test_ll_reverse": results.get("test_ll_reverse"), "logZ": results.get("logZ"),
            "logZ_reverse": results.get("logZ_reverse"), "bracket": results.get("bracket"),
            "seconds": seconds, "epochs": epochs, "seconds_training": train,
            "seconds_per_epoch": None if train is None else train / epochs}


def run_demo(out: Path, seed: int, precision: str, quick: bool) -> dict:
    overrides = {"seed": seed, "precision": precision}
    if quick:
        overrides.update(epochs=1, n_betas=201, pt_steps=20)
    t0 = time.perf_counter()
    folder = demo.run(out, **overrides)
    return _figures(folder, time.perf_counter() - t0, overrides.get("epochs", demo.DEFAULTS["epochs"]))


def run_cd25(out: Path, seed: int, precision: str, quick: bool) -> dict:
    epochs = 1 if quick else 20
    sets = [f"training.epochs={epochs}", f"training.precision={precision}", f"seed={seed}"]
    if quick:
        sets += ["data.n_train=2000", "ais.n_betas=201"]
    cmd = [sys.executable, "-m", "natural_bm.cli", "train", str(CD25), "--out", str(out), "--verbose", "2"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return _figures(out, time.perf_counter() - t0, epochs) | {"command": " ".join(cmd[1:])}


def verdict(runs: dict) -> dict:
    """Per recipe: each precision's mean and spread of test_ll over the seeds, and for each precision but
    float32 whether its mean is within float32's spread of float32's mean (``<precision>_within_float32_spread``)."""
    out = {}
    for recipe, by_precision in runs.items():
        stats = {}
        for precision, seeds in by_precision.items():
            lls = [r["test_ll"] for r in seeds.values() if r.get("test_ll") is not None]
            stats[precision] = {"mean": statistics.mean(lls) if lls else None,
                                "spread": max(lls) - min(lls) if len(lls) > 1 else None, "n": len(lls)}
        f32 = stats.get("float32", {})
        out[recipe] = dict(stats)
        for precision, st in stats.items():
            if precision == "float32":
                continue
            keep = None
            if f32.get("mean") is not None and st.get("mean") is not None and f32.get("spread") is not None:
                keep = abs(st["mean"] - f32["mean"]) <= f32["spread"]
            out[recipe][f"{precision}_within_float32_spread"] = keep
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/precision")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS),
                        help="training.precision values to run (bfloat16-emulated: bfloat16's numerics on any CPU)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the JSON and run only the missing ones")
    parser.add_argument("--refresh", action="store_true",
                        help="recompute the figures of the finished runs in --out into the JSON, without training")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    root = Path(args.out)
    runs: dict = {"demo": {p: {} for p in args.precisions},
                  "rbm500_cd25_20_epochs": {p: {} for p in args.precisions}}
    target = root / "precision_quick.json" if args.quick else HERE / "precision.json"
    kept: dict = {}  # what a resumed study keeps of the JSON besides its runs (its note)
    if args.resume and target.exists():
        previous = json.loads(target.read_text())
        for recipe, by_precision in previous["runs"].items():
            for precision, by_seed in by_precision.items():
                runs.setdefault(recipe, {}).setdefault(precision, {}).update(by_seed)
        kept = {k: previous[k] for k in ("note",) if k in previous}
    if args.refresh:  # the figures again from the run folders (e.g. after adding a column), times kept
        doc = json.loads(target.read_text())
        for recipe, by_precision in doc["runs"].items():
            prefix = "demo" if recipe == "demo" else "cd25"
            for precision, by_seed in by_precision.items():
                for seed, old in by_seed.items():
                    new = _figures(root / f"{prefix}_{precision}_s{seed}", old["seconds"], old["epochs"])
                    by_seed[seed] = old | new
        doc["verdict"] = verdict(doc["runs"])
        atomic_write_text(target, json.dumps(doc, indent=1) + "\n")
        print(json.dumps(doc["verdict"], indent=1))
        return
    doc = None
    for seed in seeds:
        for precision in args.precisions:  # interleaved: the precisions see the same machine conditions
            if str(seed) not in runs["demo"][precision]:
                runs["demo"][precision][str(seed)] = run_demo(root / f"demo_{precision}_s{seed}", seed, precision,
                                                              args.quick)
            if str(seed) not in runs["rbm500_cd25_20_epochs"][precision]:
                runs["rbm500_cd25_20_epochs"][precision][str(seed)] = run_cd25(
                    root / f"cd25_{precision}_s{seed}", seed, precision, args.quick)
            doc = {"about": __doc__.splitlines()[0], "git_commit": git_commit()[0], "date": time.strftime("%Y-%m-%d"),
                   "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "runs": runs,
                   "verdict": verdict(runs)} | kept
            atomic_write_text(target, json.dumps(doc, indent=1) + "\n")  # after every run: nothing lost
    if doc is not None:
        print(json.dumps(doc["verdict"], indent=1))


if __name__ == "__main__":
    main()
