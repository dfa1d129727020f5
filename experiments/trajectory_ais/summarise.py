"""Collect ``run_all.sh``'s measurements into ``drift.json``: per epoch, every trajectory variant against the
reference, and the summary numbers the documentation quotes (``TrajectoryAISCallback``'s "When it drifts").

    python experiments/trajectory_ais/summarise.py /tmp/trajectory_ais --out experiments/trajectory_ais/drift.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from natural_bm.io import atomic_write_text

#: the variants of compare.py, by what they are
NAMES = {
    "own:100:0.5:1e-4": "own chains (the callback without re-anchoring): 100, resampled below 50 effective",
    "own:100:0.0:1e-4": "own chains, never resampled",
    "own:100:0.9:1e-4": "own chains, resampled below 90 effective",
    "own:100:0.5:1e-5:5000": "own chains, steps of a tenth of the variance, at most 5,000 a move",
    "own:1000:0.5:1e-4": "1,000 own chains",
    "own:100:0.5:1e-4@5:5000": "own chains, a fresh population every 5 epochs (5,000 steps from the zero-weight copy)",
    "own:100:0.5:1e-4#1:5000": "own chains re-anchored every epoch by a 5,000-beta AIS (the callback's default)",
    "own:100:0.5:1e-4#2:5000": "own chains re-anchored every 2 epochs by a 5,000-beta AIS",
    "own:100:0.5:1e-4#3:5000": "own chains re-anchored every 3 epochs by a 5,000-beta AIS",
    "fresh:0.5:1e-4": "copies of the training chains at each move's start, annealed over one move",
    "reverse:1e-4": "the training chains at each move's end, annealed back over it (reverse AIS of one move)",
    "bar:1e-4": "Bennett's acceptance ratio of the forward and reverse moves of the training chains",
    "training_chains_every_update": "the training's persistent chains, an increment at every update (Bereux et al.)",
    "independent_chains_every_update": "100 chains of their own on the same per-update path (a Gibbs sweep per update)",
}


def _round(x, nd=3):
    return None if x is None or x != x else round(float(x), nd)


def trajectory_table(compare: dict, live: dict) -> dict:
    """compare.py's epochs with each variant's error against the reference, plus the live per-update rows."""
    epochs, summary = [], {}
    variants = [k for k in compare["epochs"][0] if k in NAMES]
    for i, row in enumerate(compare["epochs"]):
        ref = row.get("reference")
        out = {"epoch": i, "seconds_training": _round(row["seconds_training"], 2)}
        if ref:
            out["reference"] = {k: _round(v) if isinstance(v, float) else v for k, v in ref.items()}
        for k in variants:
            v = row[k]
            cell = {"logZ": _round(v["logZ"]), "error": _round(v["logZ"] - ref["logZ"]) if ref else None}
            for key in ("ess", "steps", "resamplings", "ancestors", "drift", "increment_forward", "increment_reverse",
                        "ess_reverse"):
                if key in v:
                    cell[key] = _round(v[key])
            out[k] = cell
        for k, rows in live.items():
            if rows:
                out[k] = {"logZ": _round(rows[i]["logZ"]), "ess": _round(rows[i]["ess"]),
                          "error": _round(rows[i]["logZ"] - ref["logZ"]) if ref else None,
                          "seconds": _round(rows[i]["seconds"], 2)}
        epochs.append(out)
    for k in variants + [k for k, rows in live.items() if rows]:
        errs = [r[k]["error"] for r in epochs if r[k]["error"] is not None]
        summary[k] = {"what": NAMES.get(k, k), "error_last_epoch": errs[-1],
                      "largest_abs_error": max(map(abs, errs))}
        anc = [r[k].get("ancestors") for r in epochs if r[k].get("ancestors") is not None]
        if anc:
            summary[k]["ancestors_by_epoch"] = anc
    return {"epochs": epochs, "summary": summary}


def bench(path: Path) -> dict:
    """The median line of bench_trajectory.py's output."""
    text = path.read_text()
    m = re.search(r"median: training ([\d.]+) s an epoch, trajectory AIS ([\d.]+) s .*?annealing ([\d.]+) s, the "
                  r"increments ([\d.]+) s, the re-anchoring ([\d.]+) s, the log-likelihoods ([\d.]+) s", text)
    keys = ("training_s", "trajectory_s", "annealing_s", "increments_s", "reanchoring_s", "log_likelihoods_s")
    return {"header": text.splitlines()[0], **dict(zip(keys, map(float, m.groups()), strict=True))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", help="run_all.sh's work folder")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    w = Path(args.work)
    out = {"about": "Why trajectory AIS drifts, measured (issue 31): the demo's training (RBM 784-200, PCD-1 with 100 "
                    "chains, lr 0.002, momentum 0.9, l2 1e-4, batches of 100, 30 epochs of MNIST binarised per "
                    "minibatch) against a 100-run, 14,501-beta forward AIS at every epoch, and a 784-20 RBM trained "
                    "the same way against exact log Z; errors are estimate minus reference, nats.",
           "date": time.strftime("%Y-%m-%d"),
           "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "command": "bash experiments/trajectory_ais/run_all.sh " + str(w),
           "summarised_by": " ".join([Path(sys.executable).name, *sys.argv])}
    for name, stem in (("demo", "200"), ("rbm784_20", "20")):
        compare = json.loads((w / ("demo.json" if stem == "200" else "rbm20.json")).read_text())
        traj = torch.load(w / f"traj{stem}.pt", weights_only=False)
        live = {"training_chains_every_update": traj["live_training_chains"],
                "independent_chains_every_update": traj["live_independent_chains"]}
        out[name] = {"recipe": traj["config"], "commands": compare["command"], "variant_seconds": compare["seconds"],
                     **trajectory_table(compare, live)}
    anchor = json.loads((w / "anchor_cost.json").read_text())
    rows = anchor["epochs"]
    out["anchor_cost"] = {"command": anchor["command"], "epochs": [
        {"epoch": r["epoch"], **{b: {"error": _round(r[b]["logZ"] - r["reference"]["logZ"]),
                                     "ess": _round(r[b]["ess"], 1), "seconds": _round(r[b]["seconds"], 2)}
                                 for b in r if b.isdigit()}} for r in rows]}
    out["anchor_cost"]["summary"] = {
        b: {"largest_abs_error": max(abs(e[b]["error"]) for e in out["anchor_cost"]["epochs"]),
            "median_seconds": sorted(e[b]["seconds"] for e in out["anchor_cost"]["epochs"])[len(rows) // 2]}
        for b in rows[0] if b.isdigit()}
    bias = json.loads((w / "bias.json").read_text())
    out["training_chain_bias_rbm12_8"] = bias
    out["cost_per_epoch"] = {f.stem.removeprefix("bench_"): bench(f) for f in sorted(w.glob("bench_*.txt"))}
    atomic_write_text(Path(args.out), json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k]["summary"] for k in ("demo", "rbm784_20")}, indent=1))


if __name__ == "__main__":
    main()
