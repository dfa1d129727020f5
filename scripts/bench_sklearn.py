"""``RBMTransformer`` against scikit-learn's ``BernoulliRBM`` on small data: whole ``fit`` calls.

The issue's case: the digits (1,797 rows x 64 grey levels in [0, 1], float64), 32 hidden units,
``n_iter=10``, ``batch_size=10`` (BernoulliRBM's default): 1,800 updates of a 64 x 32 model, so
the time is the per-batch work around a few tiny matrix products. A second row pair uses
``n_components=256`` (BernoulliRBM's default), where the products start to count.

A third contestant, "bare torch loop", is the least torch can do for the same algorithm:
``BernoulliRBM._fit``'s PCD update (one chain per batch row) written as about 20 torch operations on the
batch, with no validation, callbacks, logs or loss. It is the floor of any torch implementation on
this data: what is left between it and BernoulliRBM is torch's cost per operation, and what is left
between RBMTransformer and it is natural_bm's own per-batch work.

A fourth, "RBMTransformer (updates under torch.no_grad)", is RBMTransformer with the fit loop's updates in
the autograd mode they ran in before 2026-12-07 (``torch.no_grad`` instead of ``torch.inference_mode``,
``natural_bm.training.fit.update_mode``): the cost of autograd's per-operation bookkeeping.

A fifth, "RBMTransformer (with fit's epoch-end pll)", is RBMTransformer with the fit loop's end-of-epoch
pseudo-likelihood of the training rows computed, as before 2026-12-08 (``fit(..., pseudo_likelihood=True)``;
RBMTransformer reads nothing of it and now skips it).

Each round fits every contestant once (interleaved: the machines are shared); medians over
``--repeats`` rounds, in seconds per ``fit``, and the ratio to BernoulliRBM's median.

Usage: python scripts/bench_sklearn.py [--repeats 7] [--threads 1] [--out table.md] [--json results.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bench_common import interleaved, markdown_lines, save_results_json
from sklearn.datasets import load_digits
from sklearn.neural_network import BernoulliRBM

import natural_bm.training.fit as fit_loop
from natural_bm import RBM
from natural_bm.io import print_and_save
from natural_bm.sklearn import RBMTransformer


def _fit_seconds(cls, X, n_components: int) -> float:
    t0 = time.perf_counter()
    cls(n_components=n_components, n_iter=10, random_state=0).fit(X)
    return time.perf_counter() - t0


def _fit_seconds_no_grad(X, n_components: int) -> float:
    """``RBMTransformer``'s fit with its updates under ``torch.no_grad`` (the fit loop's mode on the CPU before
    2026-12-07) instead of ``torch.inference_mode`` (``natural_bm.training.fit.update_mode``): the difference
    is the per-operation bookkeeping of autograd's version counters and views."""
    saved = fit_loop.update_mode
    fit_loop.update_mode = lambda device: torch.no_grad
    try:
        return _fit_seconds(RBMTransformer, X, n_components)
    finally:
        fit_loop.update_mode = saved


def _fit_seconds_with_pll(X, n_components: int) -> float:
    """``RBMTransformer``'s fit with the fit loop's epoch-end pll computed (``pseudo_likelihood=True``), which
    RBMTransformer skipped from 2026-12-08 on."""
    inherited = RBM.fit  # (BoltzmannMachine's: RBM defines no fit of its own)

    def fit_with_pll(self, *args, **kwargs):
        return inherited(self, *args, **{**kwargs, "pseudo_likelihood": True})

    RBM.fit = fit_with_pll
    try:
        return _fit_seconds(RBMTransformer, X, n_components)
    finally:
        del RBM.fit


def _bare_torch_seconds(X: np.ndarray, n_components: int, seed: int = 0, n_iter: int = 10,
                        batch_size: int = 10, lr: float = 0.1) -> float:
    """``BernoulliRBM._fit``'s update in plain torch: the same arithmetic per batch, the fewest operations."""
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(X)
    n, d = x.shape
    W = torch.randn(d, n_components, generator=g, dtype=x.dtype) * 0.01
    b, c = torch.zeros(d, dtype=x.dtype), torch.zeros(n_components, dtype=x.dtype)
    h_chain = torch.zeros(batch_size, n_components, dtype=x.dtype)
    step = lr / batch_size
    for _ in range(n_iter):
        for lo in range(0, n, batch_size):
            v = x[lo : lo + batch_size]
            h_pos = torch.addmm(c, v, W).sigmoid_()
            p_v = torch.addmm(b, h_chain, W.T).sigmoid_()
            v_neg = torch.rand(p_v.shape, generator=g, dtype=x.dtype).lt_(p_v)
            h_neg = torch.addmm(c, v_neg, W).sigmoid_()
            W.addmm_(v.T, h_pos, alpha=step).addmm_(v_neg.T, h_neg, alpha=-step)
            c.add_(h_pos.sum(0).sub_(h_neg.sum(0)), alpha=step)
            b.add_(v.sum(0).sub_(v_neg.sum(0)), alpha=step)
            h_chain = torch.rand(h_neg.shape, generator=g, dtype=x.dtype).lt_(h_neg)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (numpy's BLAS: OMP_NUM_THREADS)")
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument("--json", help="also write the benchmarks page's results file (docs/benchmarks/*.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X = load_digits().data / 16.0
    contestants = {}
    for units in (32, 256):
        for cls in (BernoulliRBM, RBMTransformer):
            contestants[f"{cls.__name__}, {units} units"] = lambda r, cls=cls, units=units: _fit_seconds(cls, X, units)
        contestants[f"RBMTransformer (updates under torch.no_grad), {units} units"] = (
            lambda r, units=units: _fit_seconds_no_grad(X, units))
        contestants[f"RBMTransformer (with fit's epoch-end pll), {units} units"] = (
            lambda r, units=units: _fit_seconds_with_pll(X, units))
        contestants[f"bare torch loop, {units} units"] = lambda r, units=units: _bare_torch_seconds(X, units)
    for fn in contestants.values():  # first calls (imports, allocator) outside the rounds
        fn(-1)
    times = interleaved(contestants, args.repeats, "s", 3)
    caption = f"fit on the digits (1,797 x 64, float64), n_iter=10, batch_size=10, {args.threads} thread(s)"
    header = ["estimator", f"median s per fit ({args.repeats} rounds)", "min", "x BernoulliRBM"]
    rows = []
    for name, ts in times.items():
        base = statistics.median(times["BernoulliRBM, " + name.rsplit(", ", 1)[1]])
        rows.append([name, f"{statistics.median(ts):.3f}", f"{min(ts):.3f}", f"{statistics.median(ts) / base:.2f}"])
    lines = markdown_lines(caption, header, rows)
    print_and_save("\n".join(lines), args.out)
    if args.json:
        save_results_json(args.json, title="RBMTransformer against BernoulliRBM on small data", order=15,
                          caption=caption + f" (BernoulliRBM's default): 1,800 updates; {args.repeats} interleaved "
                          "rounds, medians; the bare torch loop is BernoulliRBM's update in the fewest torch "
                          "operations", header=header, rows=rows, source="issue 36",
                          conditions="quiet (nothing else running)")


if __name__ == "__main__":
    main()
