"""``RBMTransformer`` against scikit-learn's ``BernoulliRBM`` on small data: whole ``fit`` calls.

The issue's case: the digits (1,797 rows x 64 grey levels in [0, 1], float64), 32 hidden units,
``n_iter=10``, ``batch_size=10`` (BernoulliRBM's default): 1,800 updates of a 64 x 32 model, so
the time is the per-batch work around a few tiny matrix products (torch dispatches an operation
in about 3 to 8 us on the project machines, numpy in 1 to 3 us). A second row pair uses
``n_components=256`` (BernoulliRBM's default), where the products start to count.

Each round fits every contestant once (interleaved: the machines are shared); medians over
``--repeats`` rounds, in seconds per ``fit``, and the ratio to BernoulliRBM's median.

Usage: python scripts/bench_sklearn.py [--repeats 7] [--threads 1] [--out table.md]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_common import interleaved
from sklearn.datasets import load_digits
from sklearn.neural_network import BernoulliRBM

from natural_bm.io import print_and_save
from natural_bm.sklearn import RBMTransformer


def _fit_seconds(cls, X, n_components: int) -> float:
    t0 = time.perf_counter()
    cls(n_components=n_components, n_iter=10, random_state=0).fit(X)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (numpy's BLAS: OMP_NUM_THREADS)")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X = load_digits().data / 16.0
    contestants = {}
    for units in (32, 256):
        for cls in (BernoulliRBM, RBMTransformer):
            contestants[f"{cls.__name__}, {units} units"] = lambda r, cls=cls, units=units: _fit_seconds(cls, X, units)
    for fn in contestants.values():  # first calls (imports, allocator) outside the rounds
        fn(-1)
    times = interleaved(contestants, args.repeats, "s", 3)
    lines = [f"fit on the digits (1,797 x 64, float64), n_iter=10, batch_size=10, {args.threads} thread(s)", "",
             f"| estimator | median s per fit ({args.repeats} rounds) | min | x BernoulliRBM |", "|---|---|---|---|"]
    for name, ts in times.items():
        base = statistics.median(times["BernoulliRBM, " + name.split(", ")[1]])
        lines.append(f"| {name} | {statistics.median(ts):.3f} | {min(ts):.3f} | "
                     f"{statistics.median(ts) / base:.2f} |")
    print_and_save("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
