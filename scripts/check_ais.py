"""AIS accuracy table: exact log Z against forward and reverse AIS.

For several 784-visible RBMs small enough to enumerate (random weights of
several scales, and RBMs trained a few epochs on MNIST), prints the exact log
Z, the forward AIS estimate with its -3/+3 sigma band, reverse AIS, and the
errors in nats, with the log weights accumulated in float64 and in float32.

Usage: python scripts/check_ais.py [--runs 100] [--betas N] [--out table.md]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from natural_bm import RBM, SGD
from natural_bm.datasets import load_mnist
from natural_bm.estimators import AIS, EngineOptions, log_partition_exact
from natural_bm.io import print_and_save


def random_rbm(nh: int, scale: float, seed: int) -> RBM:
    g = torch.Generator().manual_seed(seed)
    m = RBM(784, nh)
    with torch.no_grad():
        m.W.copy_(scale * torch.randn(784, nh, generator=g))
        m.vbias.copy_(0.5 * torch.randn(784, generator=g))
        m.hbias.copy_(torch.randn(nh, generator=g))
    return m


def models(data: np.ndarray):
    for nh, scale in [(10, 0.01), (20, 0.05), (20, 0.1)]:
        yield f"random 784x{nh}, W scale {scale}", random_rbm(nh, scale, nh), None
    for nh, epochs in [(10, 3), (20, 5)]:
        m = RBM(784, nh, seed=0).init_from_data(data).compile(SGD(0.05, momentum=0.5), "cd")
        m.fit(data, batch_size=100, epochs=epochs, verbose=0, seed=0)
        yield f"MNIST 784x{nh}, CD-1 {epochs} epochs", m, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--betas", type=int, default=None, help="number of betas (default 14,501)")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_mnist("sampled", n_train=10_000, n_valid=0).train
    lines = [
        "| model | exact log Z | log w dtype | AIS log Z [-3σ, +3σ] | AIS error | reverse AIS | reverse error |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m, d in models(data):
        exact = log_partition_exact(m, progress=False)
        for dtype in (torch.float64, torch.float32):
            ais = AIS(m, data=d, n_runs=args.runs, n_betas=args.betas, base="data" if d is not None else "uniform",
                      seed=0, progress=False, engine=EngineOptions(log_weight_dtype=dtype))
            z, lo, hi = ais.estimate_log_error_Z()
            rev = ais.run_reverse(data=d, n_gibbs=1000)
            row = (f"| {name} | {exact:.3f} | {str(dtype).replace('torch.', '')} | {z:.3f} [{lo:.3f}, {hi:.3f}] "
                   f"| {z - exact:+.3f} | {rev:.3f} | {rev - exact:+.3f} |")
            lines.append(row)
            print(row, flush=True)
    print_and_save("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
