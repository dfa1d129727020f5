"""How loose is the mean-field bound? log p*(v) of a 3-layer DBM (v, h1, h2) three ways.

For the first test images, prints the mean over images of
* the mean-field lower bound (this script's own fixed-point iteration, and the library's ``log_prob_bound``);
* the library's importance-sampled estimate (``log_prob_importance``: h2 drawn from q, h1 summed out);
* an independent estimate written here in plain torch float64 with the *other* proposal: h1 drawn from
  its mean-field posterior, h2 summed out (log p*(v, h1) = b0.v + b1.h1 + v W01 h1 + sum softplus(h1 W12 + b2)),
  and the same with h2 drawn, for K = 1, 100, 1000;
* how much the library's estimate moves from one set of draws to another: the standard deviation over
  images of the difference between two seeds, divided by sqrt(2) (one image's draw-to-draw spread), and
  that divided by sqrt(10,000) (the spread of a mean over the 10,000 test images).
The estimates of both proposals rise towards log p*(v) as K grows; agreement between them at large K is a
check of the library's estimator that needs no exact answer. All values are unnormalised (no log Z), nats.

Usage: python scripts/check_dbm_likelihood.py MODEL [--images 200] [--samples 1 100 1000] [--out table.md]
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from natural_bm import load_model
from natural_bm.datasets import load_mnist
from natural_bm.io import print_and_save
from natural_bm.rng import RandomSource


def _log_q(h: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return (torch.special.xlogy(h, mu) + torch.special.xlogy(1 - h, 1 - mu)).sum(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--samples", type=int, nargs="+", default=[1, 100, 1000])
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    m = load_model(args.model)
    if list(m.edges) != [(0, 1), (1, 2)]:
        raise SystemExit("this check is written for a chain v - h1 - h2 (a 3-layer DBM).")
    x = torch.from_numpy(load_mnist("sampled").test[: args.images]).double()
    W1, W2 = m.weight(0, 1).detach().double(), m.weight(1, 2).detach().double()
    b0, b1, b2 = (m.bias(k).detach().double() for k in range(3))
    mu1 = torch.sigmoid(2 * (x @ W1) + b1)
    mu2 = torch.sigmoid(mu1 @ W2 + b2)
    for _ in range(200):
        mu1 = torch.sigmoid(x @ W1 + mu2 @ W2.T + b1)
        mu2 = torch.sigmoid(mu1 @ W2 + b2)
    ent = lambda p: -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)).sum(1)  # noqa: E731
    mf = (x @ b0 + mu1 @ b1 + mu2 @ b2 + ((x @ W1) * mu1).sum(1) + ((mu1 @ W2) * mu2).sum(1)
          + ent(mu1) + ent(mu2))
    g = torch.Generator().manual_seed(args.seed)

    def estimate(K: int, draw_h1: bool) -> torch.Tensor:
        log_w = torch.empty(K, len(x), dtype=torch.float64)
        for s in range(K):
            if draw_h1:
                h = (torch.rand(mu1.shape, generator=g, dtype=torch.float64) < mu1).double()
                log_w[s] = x @ b0 + h @ b1 + ((x @ W1) * h).sum(1) + F.softplus(h @ W2 + b2).sum(1) - _log_q(h, mu1)
            else:
                h = (torch.rand(mu2.shape, generator=g, dtype=torch.float64) < mu2).double()
                log_w[s] = x @ b0 + h @ b2 + F.softplus(x @ W1 + h @ W2.T + b1).sum(1) - _log_q(h, mu2)
        return torch.logsumexp(log_w, 0) - math.log(K)

    xf = x.to(m.dtype)
    rows = [f"# log p*(v) of the first {args.images} test images, mean over images (nats, unnormalised)", "",
            f"model: {args.model}", "", "| estimator | K | mean | spread: one image, mean of 10,000 |",
            "|---|---|---|---|",
            f"| mean-field bound (this script) | - | {float(mf.mean()):.3f} | |",
            f"| mean-field bound (`log_prob_bound`) | - | {float(m.log_prob_bound(xf).double().mean()):.3f} | |"]
    for K in args.samples:
        lib = m.log_prob_importance(xf, K, RandomSource(args.seed))
        spread = float((lib - m.log_prob_importance(xf, K, RandomSource(args.seed + 1))).std()) / math.sqrt(2)
        rows.append(f"| `log_prob_importance` (h2 drawn, h1 summed) | {K} | {float(lib.mean()):.3f} | "
                    f"{spread:.4f}, {spread / 100:.5f} |")
        rows.append(f"| this script, h2 drawn, h1 summed | {K} | {float(estimate(K, False).mean()):.3f} | |")
        rows.append(f"| this script, h1 drawn, h2 summed | {K} | {float(estimate(K, True).mean()):.3f} | |")
    print_and_save("\n".join(rows), args.out)


if __name__ == "__main__":
    main()
