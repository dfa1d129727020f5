"""How far is a DBM's importance-sampled test log-likelihood from converged? Four estimators of log p*(v)
on the same test rows, against one log Z.

The test log-likelihood of a DBM needs log p*(v) = log sum_h exp(-E(v, h)) per image, which no one can
compute exactly for 784-500-1000. The README quotes importance sampling from the mean-field posterior
(K = 100 draws of h2, h1 summed out). This script puts beside it, on the first ``--rows`` test images:

* the mean-field bound (what Salakhutdinov & Hinton report);
* importance sampling with K = 100 and K = 1,000 draws;
* per-image AIS (``natural_bm.estimators.log_prob_ais``): ``--chains`` runs of ``--betas`` betas per
  image, from the mean-field posterior to the true one, once per ``--betas`` value.

All are stochastic lower bounds that rise towards log p*(v) as their budget grows; when the larger
budgets stop moving the figure, the quoted one is converged. Output: one JSON object (also written to
``--out``), log-likelihoods in nats per image with the log Z of ``--log-z`` (default: the largest of the
model's shipped forward and reverse estimates on both annealing paths, ``MODEL_results.json`` and
``MODEL_logz_parity0.json``, as the README quotes).

Usage: python experiments/dbm_mnist_sh2009/estimator_check.py MODEL.pt [--rows 1000] [--chains 10]
       [--betas 1000 3000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from natural_bm import load_model
from natural_bm.datasets import load_mnist
from natural_bm.estimators import log_prob_ais
from natural_bm.io import atomic_write_text
from natural_bm.rng import RandomSource


def _summary(scores: torch.Tensor, log_z: float, seconds: float) -> dict:
    s = scores.double() - log_z
    return {"ll": float(s.mean()), "stderr": float(s.std()) / math.sqrt(len(s)), "seconds": round(seconds, 1)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--chains", type=int, default=10)
    p.add_argument("--betas", type=int, nargs="+", default=[1000])
    p.add_argument("--log-z", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model)
    log_z = a.log_z
    if log_z is None:  # the largest shipped estimate: forward and reverse, on both annealing paths
        found = [json.loads(f.read_text()) for f in (Path(a.model.replace(".pt", s)) for s in
                 ("_results.json", "_logz_parity0.json")) if f.is_file()]
        log_z = max(r[k] for r in found for k in ("logZ", "logZ_reverse") if k in r)
    x = torch.as_tensor(load_mnist("sampled").test[: a.rows], dtype=model.dtype)
    out = {"model": a.model, "rows": len(x), "log_z": log_z, "seed": a.seed, "threads": a.threads}
    with torch.no_grad():
        t = time.time()
        out["mean_field_bound"] = _summary(model.log_prob_bound(x), log_z, time.time() - t)
        for k in (100, 1000):
            t = time.time()
            out[f"importance_{k}"] = _summary(model.log_prob_importance(x, k, RandomSource(a.seed, model.device)),
                                              log_z, time.time() - t)
            print(json.dumps({f"importance_{k}": out[f"importance_{k}"]}), flush=True)
        for b in a.betas:
            t = time.time()
            est = log_prob_ais(model, x, a.chains, b, RandomSource(a.seed + 1, model.device))
            out[f"posterior_ais_{a.chains}x{b}"] = _summary(est, log_z, time.time() - t)
            print(json.dumps({f"posterior_ais_{a.chains}x{b}": out[f"posterior_ais_{a.chains}x{b}"]}), flush=True)
    if a.out:
        atomic_write_text(a.out, json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
