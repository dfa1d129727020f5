"""AIS speed: natural_bm against a numpy loop, an eager torch loop and the bare products.

AIS of an RBM with 784 visible and 500 hidden units, 100 runs x 14,500 steps
(Salakhutdinov & Murray's schedule), float32 states, float64 log weights,
2 threads; runs interleaved (A, B, C, D, A, ...) and medians reported.

* natural_bm: ``AIS(...).run_logZ()`` (compiled step, counter-based RNG,
  products through oneDNN with packed weights on the CPU); also with
  ``packed_weights=False`` (products through ``torch.addmm``, MKL).
* numpy loop: the same algorithm in numpy (PCG64 uniforms, float64 log weights).
* eager torch loop: the same maths, uncompiled, ``torch.rand_like`` uniforms.
* products alone: only the two 100x784x500 products of each step (v W and
  h W^T), the floor on a CPU; once through torch's ``@`` (MKL) and once
  through oneDNN with packed weights (``natural_bm.onednn``), the faster of
  the two on AMD processors. The "vs floor" column divides by the faster floor.

Also times the exact log Z of 784x20 and 784x25 RBMs.

With ``--device cuda`` everything runs on the GPU (the numpy loop is left out)
and natural_bm is timed with and without its CUDA-graph replay.

Usage: python scripts/bench_ais.py [--repeats 3] [--betas 14501] [--device cpu] [--out table.md] [--only PREFIX ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from bench_common import interleaved, markdown_lines, save_results_json

from natural_bm import RBM, onednn
from natural_bm.estimators import AIS, EngineOptions, default_betas, log_partition_exact
from natural_bm.io import print_and_save


def make_rbm(nh: int = 500, seed: int = 0, device: str = "cpu") -> RBM:
    g = torch.Generator().manual_seed(seed)
    m = RBM(784, nh)
    with torch.no_grad():
        m.W.copy_(0.02 * torch.randn(784, nh, generator=g))
        m.vbias.copy_(-1.0 + 0.5 * torch.randn(784, generator=g))
        m.hbias.copy_(-0.5 * torch.ones(nh))
    return m.to(device)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_natural_bm(m, betas, runs, cuda_graph=True, packed_weights=True):
    t0 = time.perf_counter()
    AIS(m, n_runs=runs, betas=betas, base="uniform", seed=0, progress=False,
        engine=EngineOptions(cuda_graph=cuda_graph, packed_weights=packed_weights)).run_logZ()
    return time.perf_counter() - t0


def run_natural_bm_addmm(m, betas, runs):
    return run_natural_bm(m, betas, runs, packed_weights=False)


def run_natural_bm_no_graph(m, betas, runs):
    return run_natural_bm(m, betas, runs, cuda_graph=False)


def run_numpy(m, betas, runs):
    rng = np.random.default_rng(0)
    W, b, c = (t.detach().numpy() for t in (m.W, m.vbias, m.hbias))
    bA = np.zeros_like(b)
    db = (b - bA).astype(np.float64)
    be = betas.numpy()
    t0 = time.perf_counter()
    v = (rng.random((runs, 784), dtype=np.float32) < 0.5).astype(np.float32)
    logw = np.zeros(runs)
    for k in range(1, len(be)):
        x = v @ W + c
        x64 = x.astype(np.float64)
        sp = np.logaddexp(0, be[k] * x64) - np.logaddexp(0, be[k - 1] * x64)
        logw += (be[k] - be[k - 1]) * (v @ db) + sp.sum(1)
        h = (rng.random(x.shape, dtype=np.float32) < 1 / (1 + np.exp(-be[k] * x))).astype(np.float32)
        act = (1 - be[k]) * bA + be[k] * (h @ W.T + b)
        v = (rng.random(act.shape, dtype=np.float32) < 1 / (1 + np.exp(-act))).astype(np.float32)
    return time.perf_counter() - t0


def run_eager_torch(m, betas, runs):
    W, b, c = m.W.detach(), m.vbias.detach(), m.hbias.detach()
    dev = W.device
    bA = torch.zeros_like(b)
    db = (b - bA).double()
    be = betas.tolist()
    torch.manual_seed(0)
    _sync(dev)
    t0 = time.perf_counter()
    v = torch.bernoulli(torch.full((runs, 784), 0.5, device=dev))
    logw = torch.zeros(runs, dtype=torch.float64, device=dev)
    for k in range(1, len(be)):
        x = torch.addmm(c, v, W)
        x64 = x.double()
        logw += (be[k] - be[k - 1]) * (v.double() @ db) + (F.softplus(be[k] * x64) - F.softplus(be[k - 1] * x64)).sum(1)
        bk = float(be[k])
        h = (torch.rand_like(x) < torch.sigmoid(bk * x)).float()
        act = (1 - bk) * bA + bk * torch.addmm(b, h, W.T)
        v = (torch.rand_like(act) < torch.sigmoid(act)).float()
    float(logw.sum())
    return time.perf_counter() - t0


def run_products(m, betas, runs):
    W = m.W.detach()
    v = torch.bernoulli(torch.full((runs, 784), 0.5, device=W.device))
    h = torch.bernoulli(torch.full((runs, m.n_hidden), 0.5, device=W.device))
    _sync(W.device)
    t0 = time.perf_counter()
    for _ in range(1, len(betas)):
        v @ W
        h @ W.T
    _sync(W.device)
    return time.perf_counter() - t0


def run_products_onednn(m, betas, runs):
    W = m.W.detach()
    v = torch.bernoulli(torch.full((runs, 784), 0.5))
    h = torch.bernoulli(torch.full((runs, m.n_hidden), 0.5))
    zc, zb = torch.zeros(m.n_hidden), torch.zeros(784)
    pw, pwt = onednn.pack(W, runs), onednn.pack(W.T, runs)
    t0 = time.perf_counter()
    for _ in range(1, len(betas)):
        onednn.addmm(zc, v, W, pw.token)
        onednn.addmm(zb, h, W.T, pwt.token)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--betas", type=int, default=None, help="number of betas (default 14,501)")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--no-exact", action="store_true", help="skip the exact log Z timings")
    parser.add_argument("--exact-only", action="store_true", help="only the exact log Z timings")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", help="also write the markdown tables to this file")
    parser.add_argument("--json", help="also write the AIS table as the benchmarks page's results file")
    parser.add_argument("--only", nargs="+", metavar="PREFIX",
                        help="time only the rows whose names start with one of these (e.g. 'natural_bm AIS (compiled)' "
                             "'the products alone'): a shorter run beside a long job")
    args = parser.parse_args()
    torch.set_num_threads(2)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(2)
    except ImportError:
        pass
    cuda = torch.device(args.device).type == "cuda"
    if args.exact_only:
        print_and_save("\n".join(exact_lines(args.device)), args.out)
        return
    m = make_rbm(device=args.device)
    betas = default_betas(args.betas)
    contestants = {"natural_bm AIS (compiled)": run_natural_bm}
    if cuda:
        contestants["natural_bm AIS, no CUDA graph"] = run_natural_bm_no_graph
    else:
        contestants["natural_bm AIS, packed_weights=False"] = run_natural_bm_addmm
        contestants["numpy loop"] = run_numpy
    contestants["eager torch loop"] = run_eager_torch
    contestants["the products alone, torch @ (floor)"] = run_products
    if not cuda and onednn.available():
        contestants["the products alone, oneDNN packed (floor)"] = run_products_onednn
    if args.only:
        contestants = {name: fn for name, fn in contestants.items() if name.startswith(tuple(args.only))}
        if "natural_bm AIS (compiled)" not in contestants or not any(n.startswith("the products alone")
                                                                      for n in contestants):
            parser.error("--only must keep 'natural_bm AIS (compiled)' and a 'the products alone' row (the "
                         "table divides by both)")
    # compile (and capture) the timed AIS paths outside the timings
    run_natural_bm(m, default_betas(1000 if cuda else 50), args.runs)
    if run_natural_bm_addmm in contestants.values():
        run_natural_bm_addmm(m, default_betas(50), args.runs)
    times = interleaved({name: (lambda r, fn=fn: fn(m, betas, args.runs)) for name, fn in contestants.items()},
                        args.repeats, "s", 1)
    ours = statistics.median(times["natural_bm AIS (compiled)"])
    floor = min(statistics.median(ts) for name, ts in times.items() if name.startswith("the products alone"))
    caption = f"AIS, 784x500 RBM, {args.runs} runs x {len(betas) - 1} steps, " \
        + (torch.cuda.get_device_name() if cuda else "2 threads") + f" (medians of {args.repeats} interleaved runs)"
    header = ["implementation", "median s", "min s", "vs natural_bm", "vs floor"]
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append([name, f"{med:.1f}", f"{min(ts):.1f}", f"{med / ours:.2f}x", f"{med / floor:.2f}x"])
    lines = markdown_lines(caption, header, rows)
    if args.json:
        save_results_json(args.json, title=f"AIS, {'CUDA' if cuda else 'CPU'}", order=23 if cuda else 20,
                          caption=caption, header=header, rows=rows, source="issue 32",
                          conditions="quiet (nothing else running)")
    if not args.no_exact:
        lines += [""] + exact_lines(args.device)
    print_and_save("\n".join(lines), args.out)


def exact_lines(device) -> list[str]:
    """Exact log Z timings: the product method (default) for 784x20 and 784x25, and the compiled softplus
    sum for 784x20, with the two methods' difference (nats)."""
    lines = ["| exact log Z | method | seconds (first call) | seconds (second call) | log Z |", "|---|---|---|---|---|"]
    values = {}
    for nh, method, calls in ((20, "products", 2), (20, "softplus", 2), (25, "products", 1)):
        rbm = make_rbm(nh, seed=1, device=device)
        t = []
        for _ in range(calls):
            t0 = time.perf_counter()
            values[nh, method] = log_partition_exact(rbm, progress=False, method=method)
            t.append(time.perf_counter() - t0)
        second = f"{t[1]:.1f}" if len(t) > 1 else "-"
        lines.append(f"| 784x{nh} | {method} | {t[0]:.1f} | {second} | {values[nh, method]:.9f} |")
    diff = values[20, "products"] - values[20, "softplus"]
    lines.append(f"\n784x20: products minus softplus = {diff:.2e} nats")
    return lines


if __name__ == "__main__":
    main()
