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
``MODEL_logz_parity0.json``, beside the weights or in this experiment's ``models/``, as the README quotes).

Usage: python experiments/dbm_mnist_sh2009/estimator_check.py MODEL.pt [--rows 1000] [--chains 10]
       [--betas 1000 3000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from natural_bm import load_model
from natural_bm.datasets import load_mnist
from natural_bm.estimators import log_likelihood
from natural_bm.io import atomic_write_text


def _timed(model, x, log_z: float, **estimator) -> dict:
    """``log_likelihood(model, x, log_z, **estimator)`` (mean and standard error, nats) and its seconds."""
    t = time.time()
    ll, se = log_likelihood(model, x, log_z, **estimator)
    return {"ll": ll, "stderr": se, "seconds": round(time.time() - t, 1)}


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
        stem = Path(a.model).stem  # beside the weights, and (for a model shipped in the package) in models/
        folders = dict.fromkeys([Path(a.model).parent, Path(__file__).resolve().parent / "models"])
        found = [json.loads(f.read_text()) for f in (folder / f"{stem}{s}" for folder in folders for s in
                 ("_results.json", "_logz_parity0.json")) if f.is_file()]
        log_z = max(r[k] for r in found for k in ("logZ", "logZ_reverse") if k in r)
    x = torch.as_tensor(load_mnist("sampled").test[: a.rows], dtype=model.dtype)
    out = {"model": a.model, "rows": len(x), "log_z": log_z, "seed": a.seed, "threads": a.threads}
    out["mean_field_bound"] = _timed(model, x, log_z)
    for k in (100, 1000):
        out[f"importance_{k}"] = _timed(model, x, log_z, importance_samples=k, seed=a.seed)
        print(json.dumps({f"importance_{k}": out[f"importance_{k}"]}), flush=True)
    for b in a.betas:  # random numbers of seed + 1
        key = f"posterior_ais_{a.chains}x{b}"
        out[key] = _timed(model, x, log_z, ais_chains=a.chains, ais_betas=b, seed=a.seed + 1)
        print(json.dumps({key: out[key]}), flush=True)
    if a.out:
        atomic_write_text(a.out, json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
