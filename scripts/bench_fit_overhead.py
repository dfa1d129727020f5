"""The fit loop's host work per batch: what bounds a GPU epoch once the arithmetic is in a CUDA graph.

A 784-500 CD-1 epoch has 600 batches, so the issue's GPU target (under 0.05 s an epoch) leaves about
83 us a batch for everything the host does: the loop, the callbacks, the random key, the copies into
the graph's inputs and the replay's launch. This measures that work on the machine it runs on, with a
tiny RBM (8 x 4, batch 10) whose arithmetic is negligible, so the numbers are the Python and dispatch
costs alone:

* ordinary path, eager steps (``jit_compile=False``);
* ordinary path, compiled step (``jit_compile=True``; the compiled call's guards cost host time too);
* the CUDA-graph path (``training.graphed_update``) run uncaptured with its update replaced by nothing:
  the host work around a replay.

Each row is the median over ``--repeats`` epochs of 2,000 batches, in microseconds per batch (the
epoch-end monitoring of 10,000 rows is included, a few per cent here).

Usage: python scripts/bench_fit_overhead.py [--repeats 5] [--out table.md]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_common import interleaved, median_rows

from natural_bm import RBM, SGD
from natural_bm.io import print_and_save
from natural_bm.training import fit as fit_module
from natural_bm.training.graphed_update import GraphedUpdate

BATCHES = 2000


class _EmptyUpdate(GraphedUpdate):
    """The graphed path on the CPU, uncaptured, with its update replaced by nothing."""

    supported = staticmethod(lambda model: True)

    def _build(self, v, key):
        super()._build(v, key)
        zero = torch.zeros((), dtype=v.dtype)
        self.body = lambda: zero


def _epoch_us(x, jit: bool, graphed: bool) -> float:
    saved = fit_module.GraphedUpdate
    fit_module.GraphedUpdate = _EmptyUpdate if graphed else saved
    try:
        m = RBM(x.shape[1], 4, seed=0).compile(SGD(0.05, momentum=0.5), "cd", jit_compile=jit)
        m.fit(x[:200], batch_size=10, epochs=1, verbose=0, seed=0)  # compilation, first calls
        t0 = time.perf_counter()
        m.fit(x, batch_size=10, epochs=1, verbose=0, seed=0)
        return (time.perf_counter() - t0) / BATCHES * 1e6
    finally:
        fit_module.GraphedUpdate = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = (np.random.default_rng(0).random((BATCHES * 10, 8)) < 0.3).astype(np.float32)
    rows = {"ordinary path, eager steps": (False, False), "ordinary path, compiled step": (True, False),
            "CUDA-graph path, host work around the replay": (True, True)}
    times = interleaved({name: (lambda r, jit=jit, graphed=graphed: _epoch_us(x, jit, graphed))
                         for name, (jit, graphed) in rows.items()}, args.repeats, "us", 0)
    lines = [f"fit's host work per batch (RBM 8x4, batch 10, {BATCHES:,} batches, 1 thread)", "",
             f"| path | median us per batch ({args.repeats} runs) | min | a 600-batch epoch at the median (s) |",
             "|---|---|---|---|", *median_rows(times, lambda med: f"{med * 600 / 1e6:.3f}", 0)]
    print_and_save("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
