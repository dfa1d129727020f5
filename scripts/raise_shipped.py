"""RAISE (Burda, Grosse & Salakhutdinov 2015) on the shipped MNIST models, beside their AIS figures.

For each named model (``natural_bm.pretrained``; default: every MNIST one whose file is here), RAISE
estimates log p(v) of the first ``--rows`` images of the once-sampled MNIST test set by reverse annealing
from each image (``natural_bm.estimators.raise_log_likelihood``; the base model is the base-rate model of
10,000 training images binarised once). The AIS figure of the same rows uses the log Z of the model's
results file (forward AIS; and reverse AIS where there is one): RAISE is conservative in expectation
however the model's chains mix, forward AIS optimistic, so RAISE <= AIS figures is the expected order.
Writes ``<model>_raise.json`` beside each model file (the estimates, the command, the commit, the machine,
the wall time), which the results pages read; ``--suffix 1000betas`` writes ``<model>_raise_1000betas.json``
instead, so a second budget keeps its own file beside the first (the pages read every ``<model>_raise*.json``).

Usage: python scripts/raise_shipped.py [--models NAME ...] [--rows 200] [--chains 10] [--betas 1000] [--suffix S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import natural_bm.pretrained as pretrained
from natural_bm.datasets import load_mnist
from natural_bm.estimators import log_likelihood, raise_log_likelihood
from natural_bm.io import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))  # (bench_common, also when a test loads this file)
from bench_common import machine_description, short_commit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, test: torch.Tensor, base_data: torch.Tensor, chains: int, betas: int, seed: int) -> dict:
    """RAISE and the AIS figures of one model on ``test``; the numbers of its output file."""
    entry = pretrained._entry(name)
    model = pretrained.load(name)
    results = entry.results or {}
    t0 = time.perf_counter()
    est = raise_log_likelihood(model, test, n_chains=chains, n_betas=betas, data=base_data, seed=seed)
    seconds = time.perf_counter() - t0
    out = {"model": name, "rows": int(test.shape[0]), "chains": chains, "betas": betas, "seed": seed,
           "test_ll_raise": est.mean, "test_ll_raise_stderr": est.stderr,
           "raise_ess_median": float(est.ess.median()), "seconds_raise": seconds}
    for key in ("logZ", "logZ_reverse"):
        if results.get(key) is not None:
            ll, se = log_likelihood(model, test, results[key])
            out[f"test_ll_{'forward' if key == 'logZ' else 'reverse'}_same_rows"] = ll
            out["test_ll_same_rows_stderr"] = se
    return out


def raise_path(model_path: Path, suffix: str = "") -> Path:
    """The RAISE file beside ``model_path``: ``<stem>_raise.json``, or ``<stem>_raise_<suffix>.json``."""
    return model_path.with_name(model_path.stem + "_raise" + (f"_{suffix}" if suffix else "") + ".json")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="names (default: every MNIST model here)")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--betas", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suffix", default="", help="write <model>_raise_<suffix>.json (default: <model>_raise.json)")
    args = parser.parse_args(argv)
    if args.suffix and not all(c.isalnum() or c in "-_." for c in args.suffix):
        parser.error(f"--suffix {args.suffix!r}: use letters, digits, '-', '_' or '.' (it becomes part of a file name)")
    data = load_mnist("sampled")
    test = torch.as_tensor(data.test[: args.rows])
    base_data = torch.as_tensor(data.train[:10000])
    names = args.models or [e.name for e in pretrained.list() if e.path is not None and "mnist" in e.dataset.lower()]
    for name in names:
        t0 = time.perf_counter()
        out = measure(name, test, base_data, args.chains, args.betas, args.seed)
        out.update(command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if argv is None else str(argv),
                   commit=short_commit(), machine=machine_description(),
                   threads=torch.get_num_threads(), wall_time_s=time.perf_counter() - t0,
                   date=time.strftime("%Y-%m-%d"))
        path = pretrained.path(name)
        dest = raise_path(path, args.suffix)
        atomic_write_text(dest, json.dumps(out, indent=2) + "\n")
        print(json.dumps(out))


if __name__ == "__main__":
    main()
