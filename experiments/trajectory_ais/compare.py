"""Trajectory AIS variants on one recorded training trajectory (``record.py``), against exact or full AIS.

Each variant follows log Z from epoch to epoch along the straight line between the recorded parameter
sets (``TrajectoryAIS``'s moves), with different particles:

* ``own:C:R:V[:S]``: the estimator's own C chains, carried from move to move (``TrajectoryAISCallback``'s
  behaviour): resampled below R x C effective chains, step variance V nats^2 (or ``none``: n_steps equal
  steps), at most S steps a move;
* ``fresh:R:V[:S]``: at every move, copies of the training's persistent chains at the move's start (epoch
  e - 1) anneal to epoch e with equal weights; the level is the sum of the moves' estimates;
* ``reverse:V[:S]``: the training's chains at epoch e anneal back to epoch e - 1 (reverse AIS of one
  move: an estimate of log Z_e - log Z_{e-1} that errs high where the forward one errs low), without
  resampling;
* ``bar:V[:S]``: Bennett's acceptance ratio of the forward (``fresh`` without resampling) and reverse log
  weights of each move.

The first epoch's level (from the parameters before training, where the training's chains are data rows)
comes from the own chains (``own:100:0.5:1e-4``'s start and first move) for every fresh variant. The
reference: exact log Z by enumeration of the hidden layer (<= 20 hidden units) at every epoch, or a
100-run forward AIS of ``--ais-betas`` betas at ``--ais-epochs`` (cached in ``--refs``). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

from natural_bm import RBM
from natural_bm.datasets import load_mnist
from natural_bm.estimators import AIS, log_partition_exact
from natural_bm.estimators.trajectory import TrajectoryAIS, systematic_resample
from natural_bm.io import atomic_write_text


class Tracked(TrajectoryAIS):
    """``TrajectoryAIS`` that also tracks each chain's ancestor at the start (through resamplings)."""

    def start(self, params=None):
        self.ancestor = torch.arange(self.n_chains)
        return super().start(params)

    def resample(self, u):
        idx = systematic_resample(self.log_w, u)
        self.ancestor = self.ancestor[idx]
        self.log_z_offset = self.logZ
        self.chains = [None if c is None else c[idx.to(c.device)] for c in self.chains]
        self.log_w = torch.zeros_like(self.log_w)
        self.resamplings += 1


_BASE: list = []


def base_rows() -> torch.Tensor:
    """AIS's base-rate rows: the first 10,000 training images binarised once (``kind="sampled"``)."""
    if not _BASE:
        _BASE.append(load_mnist("sampled", path=os.environ.get("NATURAL_BM_DATA"), n_valid=0,
                                download=False).train[:10000])
    return _BASE[0]


def set_params(model, params) -> None:
    with torch.no_grad():
        for k, p in model.parameter_dict().items():
            p.copy_(params[k])


def bar(log_w_f: torch.Tensor, log_w_r: torch.Tensor) -> float:
    """Bennett's acceptance ratio: the Delta = log Z_1 - log Z_0 that solves
    sum_i sigmoid(w_F,i - Delta - M) = sum_j sigmoid(w_R,j + Delta + M), M = log(n_F / n_R), with w_F the
    forward log weights (E e^{w_F} = Z_1 / Z_0) and w_R the reverse ones (E e^{w_R} = Z_0 / Z_1)."""
    f, r = log_w_f.double().cpu(), log_w_r.double().cpu()
    m = math.log(f.numel() / r.numel())

    def gap(d):
        return float(torch.sigmoid(f - d - m).sum() - torch.sigmoid(r + d + m).sum())

    lo, hi = float(min(f.min(), -r.max())) - 50, float(max(f.max(), -r.min())) + 50
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if gap(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def parse(spec: str):
    spec, _, anchor = spec.partition("#")
    kind, kw, restart = parse_restart(spec)
    if anchor:
        every, betas = anchor.split(":")
        kw["anchor"] = (int(every), int(betas))
    return kind, kw, restart


def parse_restart(spec: str):
    spec, _, restart = spec.partition("@")
    kind, *rest = spec.split(":")
    if kind == "own":
        c, r, v, *s = rest
        kw = {"n_chains": int(c), "resample_below": float(r)}
    elif kind == "fresh":
        r, v, *s = rest
        kw = {"resample_below": float(r)}
    elif kind in ("reverse", "bar"):
        v, *s = rest
        kw = {"resample_below": 0.0}
    else:
        raise ValueError(f"unknown variant {spec!r}")
    kw["target_variance"] = None if v == "none" else float(v)
    if s:
        kw["max_steps"] = int(s[0])
        if kw["target_variance"] is None:
            kw["n_steps"] = int(s[0])
    if restart:
        every, steps = restart.split(":")
        kw["start_steps"] = int(steps)
        return kind, kw, int(every)
    return kind, kw, 0


def one_move(host, a, b, chains, kw, seed):
    """Anneal copies of ``chains`` (sampling the parameters ``a``) to ``b`` with equal starting weights;
    returns (log mean weight, log weights, steps, resamplings, lowest ess)."""
    est = TrajectoryAIS(host, n_chains=chains.shape[0], seed=seed, **kw)
    set_params(host, a)
    est.params = est._snapshot()
    est.chains = [chains.to(torch.float64).clone(), None]
    est.log_w = torch.zeros(chains.shape[0], dtype=torch.float64)
    est.log_z_offset, est.moves = 0.0, 1
    est.ancestor = torch.arange(chains.shape[0])  # (what start() sets: the genealogy resampling follows)
    set_params(host, b)
    est.advance()
    return est.logZ, est.log_w.clone(), est.last_steps, est.last_resamplings, est.ess


def run_variant(spec, traj, host, seed):
    kind, kw, restart = parse(spec)
    epochs = traj["epochs"]
    rows, t0 = [], time.perf_counter()
    if kind == "own":
        restart_steps = kw.pop("start_steps", 1000)
        anchor_every, anchor_betas = kw.pop("anchor", (0, 0))
        first_steps = 1000
        est = Tracked(host, seed=seed, **kw, start_steps=first_steps)
        est.start(params={k: v.double() for k, v in traj["initial"].items()})
        for i, e in enumerate(epochs):
            set_params(host, e["params"])
            if restart and i % restart == restart - 1:  # a fresh population annealed from the zero-weight copy
                est = Tracked(host, seed=seed + 1000 + i, **kw, start_steps=restart_steps)
                z = est.start()
            else:
                z = est.advance()
            drift = math.nan
            if anchor_every and i % anchor_every == anchor_every - 1:  # the callback's level-only re-anchoring
                ais = AIS(host, data=base_rows(), n_runs=100, n_betas=anchor_betas, seed=seed + i, progress=False)
                level = ais.run_logZ()
                drift = z - level
                est.reanchor(level)
                z = level
            rows.append({"drift": drift, "logZ": z, "ess": est.ess, "steps": est.last_steps,
                         "resamplings": est.last_resamplings, "ancestors": int(torch.unique(est.ancestor).numel()),
                         "distinct_states": int(torch.unique(est.chains[0], dim=0).shape[0])})
        return rows, time.perf_counter() - t0
    first, _ = run_variant("own:100:0.5:1e-4", {**traj, "epochs": epochs[:1]}, host, seed)
    level = first[0]["logZ"]
    rows.append({"logZ": level, "from": "own chains"})
    for i in range(1, len(epochs)):
        a, b = epochs[i - 1], epochs[i]
        row = {}
        if kind in ("fresh", "bar"):
            d_f, w_f, steps, res, ess = one_move(host, a["params"], b["params"], a["chains"], kw, seed + i)
            row.update({"increment_forward": d_f, "steps": steps, "resamplings": res, "ess": ess})
        if kind in ("reverse", "bar"):
            d_r, w_r, steps_r, _, ess_r = one_move(host, b["params"], a["params"], b["chains"], kw, seed + 10**6 + i)
            row.update({"increment_reverse": -d_r, "steps_reverse": steps_r, "ess_reverse": ess_r})
        inc = bar(w_f, w_r) if kind == "bar" else row["increment_forward" if kind == "fresh" else "increment_reverse"]
        level += inc
        row.update({"increment": inc, "logZ": level})
        rows.append(row)
    return rows, time.perf_counter() - t0


def references(traj, host, args) -> dict[int, dict]:
    path = Path(args.refs) if args.refs else None
    refs = {int(k): v for k, v in json.loads(path.read_text()).items()} if path and path.exists() else {}
    exact = traj["config"]["hidden"] <= 20
    wanted = range(len(traj["epochs"])) if exact else args.ais_epochs
    for e in wanted:
        if e in refs:
            continue
        set_params(host, traj["epochs"][e]["params"])
        if exact:
            refs[e] = {"logZ": log_partition_exact(host.detached_copy(dtype=torch.float64), progress=False),
                       "by": "exact"}
        else:
            ais = AIS(host, data=base_rows(), n_runs=100, n_betas=args.ais_betas, seed=e, progress=False)
            z, lo, hi = ais.estimate_log_error_Z()
            refs[e] = {"logZ": z, "logZ_lo": lo, "logZ_hi": hi, "ess": ais.ess, "betas": args.ais_betas,
                       "by": "forward AIS, 100 runs"}
        print(f"reference at epoch {e}: {refs[e]['logZ']:.3f}", flush=True)
        if path:
            atomic_write_text(path, json.dumps(refs, indent=1) + "\n")
    return refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trajectory", help="record.py's file")
    ap.add_argument("--variants", nargs="*", default=["own:100:0.5:1e-4", "fresh:0.5:1e-4", "bar:1e-4"])
    ap.add_argument("--ais-epochs", type=int, nargs="*", default=[])
    ap.add_argument("--ais-betas", type=int, default=14501)
    ap.add_argument("--refs", help="JSON cache of the references")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", "trajectory AIS", RuntimeWarning)  # the effective sample sizes are recorded
    warnings.filterwarnings("ignore", "forward AIS", RuntimeWarning)
    traj = torch.load(args.trajectory, weights_only=False)
    host = RBM(784, traj["config"]["hidden"])
    refs = references(traj, host, args)
    results, seconds = {}, {}
    for spec in args.variants:
        results[spec], seconds[spec] = run_variant(spec, traj, host, args.seed)
        errs = [(e, r["logZ"] - refs[e]["logZ"]) for e, r in enumerate(results[spec]) if e in refs]
        print(f"{spec} ({seconds[spec]:.0f} s): " + ", ".join(f"{e}: {d:+.2f}" for e, d in errs), flush=True)
    epochs = []
    for e, rec in enumerate(traj["epochs"]):
        row = {"epoch": e, "seconds_training": rec["seconds"]}
        if e in refs:
            row["reference"] = refs[e]
        row.update({spec: results[spec][e] for spec in results})
        epochs.append(row)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
           "git_commit": commit, "trajectory": traj["config"], "seconds": seconds, "epochs": epochs}
    atomic_write_text(Path(args.out), json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
