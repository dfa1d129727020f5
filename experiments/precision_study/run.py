"""Does bfloat16 training cost likelihood? (issue 32)

Trains two recipes in both precisions (``training.precision``: float32, bfloat16) with three seeds each,
and writes ``precision.json`` beside this file:

* the demo recipe (``natural_bm.demo``: RBM 784-200, PCD-1, 30 epochs of MNIST binarised per minibatch;
  forward AIS at the last epoch, reverse AIS from tempering chains);
* 20 epochs of ``experiments/rbm_mnist_sm2008/rbm500_cd25.yaml`` (RBM 784-500, CD-k with k growing,
  forward and reverse AIS at the end), through ``natural-bm train``.

For each run: the test log-likelihood (nats, once-binarised test set) with the forward log Z, the
conservative one with the reverse log Z, the bracket, and the training's wall time. For each recipe and
precision: the mean and the spread (max - min) over the seeds; the verdict keeps bfloat16 when its mean is
within float32's run-to-run spread of float32's mean (the issue's rule).

Needs MNIST in $NATURAL_BM_DATA. About an hour on 2 quiet cores; ``--quick`` (1 epoch, 2,000 training
rows, 201 betas, one seed) checks the script in a few minutes and writes ``precision_quick.json`` in --out.

Usage: python experiments/precision_study/run.py [--out runs/precision] [--seeds 0 1 2] [--quick]
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
PRECISIONS = ("float32", "bfloat16")


def _figures(results: dict, seconds: float, epochs: int) -> dict:
    return {"test_ll": results.get("test_ll"), "test_ll_stderr": results.get("test_ll_stderr"),
            "test_ll_reverse": results.get("test_ll_reverse"), "logZ": results.get("logZ"),
            "logZ_reverse": results.get("logZ_reverse"), "bracket": results.get("bracket"),
            "seconds": seconds, "epochs": epochs}


def run_demo(out: Path, seed: int, precision: str, quick: bool) -> dict:
    overrides = {"seed": seed, "precision": precision}
    if quick:
        overrides.update(epochs=1, n_betas=201, pt_steps=20)
    t0 = time.perf_counter()
    folder = demo.run(out, **overrides)
    results = json.loads((folder / "results.json").read_text())
    return _figures(results, time.perf_counter() - t0, overrides.get("epochs", demo.DEFAULTS["epochs"]))


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
    results = json.loads((out / "results.json").read_text())
    return _figures(results, time.perf_counter() - t0, epochs) | {"command": " ".join(cmd[1:])}


def verdict(runs: dict) -> dict:
    """Per recipe: each precision's mean and spread of test_ll over the seeds, and whether bfloat16's mean
    is within float32's spread of float32's mean."""
    out = {}
    for recipe, by_precision in runs.items():
        stats = {}
        for precision, seeds in by_precision.items():
            lls = [r["test_ll"] for r in seeds.values() if r.get("test_ll") is not None]
            stats[precision] = {"mean": statistics.mean(lls) if lls else None,
                                "spread": max(lls) - min(lls) if len(lls) > 1 else None, "n": len(lls)}
        f32, bf16 = stats.get("float32", {}), stats.get("bfloat16", {})
        keep = None
        if f32.get("mean") is not None and bf16.get("mean") is not None and f32.get("spread") is not None:
            keep = abs(bf16["mean"] - f32["mean"]) <= f32["spread"]
        out[recipe] = {**stats, "bfloat16_within_float32_spread": keep}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/precision")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    root = Path(args.out)
    runs: dict = {"demo": {p: {} for p in PRECISIONS}, "rbm500_cd25_20_epochs": {p: {} for p in PRECISIONS}}
    target = root / "precision_quick.json" if args.quick else HERE / "precision.json"
    for seed in seeds:
        for precision in PRECISIONS:  # interleaved: both precisions see the same machine conditions
            runs["demo"][precision][str(seed)] = run_demo(root / f"demo_{precision}_s{seed}", seed, precision,
                                                          args.quick)
            runs["rbm500_cd25_20_epochs"][precision][str(seed)] = run_cd25(root / f"cd25_{precision}_s{seed}",
                                                                           seed, precision, args.quick)
            doc = {"about": __doc__.splitlines()[0], "git_commit": git_commit()[0], "date": time.strftime("%Y-%m-%d"),
                   "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "runs": runs,
                   "verdict": verdict(runs)}
            atomic_write_text(target, json.dumps(doc, indent=1) + "\n")  # after every run: nothing lost
    print(json.dumps(doc["verdict"], indent=1))


if __name__ == "__main__":
    main()
