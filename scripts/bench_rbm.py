"""Seconds per RBM training epoch: natural_bm vs a bare torch loop vs scikit-learn.

One epoch = 60,000 MNIST images (grey levels), 784 visible x 500 hidden units,
batch 100, CD-1, float32, 2 threads. The three contestants run interleaved
(A, B, C, A, B, C, ...) and the table reports medians, because the project
machines are shared and noisy.

* natural_bm: ``RBM.fit(epochs=1, verbose=0)`` with its defaults
  (``jit_compile="auto"``: eager on the CPU, compiled on CUDA), including
  the end-of-epoch pseudo-likelihood on 10,000 rows.
* natural_bm, jit_compile=True: the same with the compiled fused step,
  compiled once before the timings (as it is once per training run; the
  compilation time is printed).
* bare torch: the same products (v W, h W^T, v' W and the weight gradient as
  one [v; v']^T [h; -h'] product), ``torch.bernoulli`` sampling, plain SGD.
* natural_bm PCD-1: ``algorithm="pcd"`` with 100 chains, its defaults.
* precision=bfloat16 (where the CPU or GPU has bfloat16 products): the same
  with the training products in bfloat16 (``natural_bm.training.precision``).
* the products alone: only the matrix products of one step (CD-1, PCD-1;
  float32 and bfloat16), the floor for any implementation on this CPU; each
  row's last-but-one column divides by its own floor.
* scikit-learn: ``BernoulliRBM(n_components=500, learning_rate=0.01,
  batch_size=100, n_iter=1)`` on float32 data (it runs PCD with one chain per
  batch row: the same five products per batch).

With ``--device cuda`` natural_bm, the bare loop and the products run on the
GPU (scikit-learn is left out), and four more rows show the CUDA-graph update
(``training.graphed_update``) against the compiled step alone
(``cuda_graph=False``), for CD-1 and for PCD-1 (100 chains), plus one epoch of
the 784-500-1000 DBM's centred mean-field PCD (``mf_steps`` 10, 100 chains;
not captured in a graph) for proportion.

Usage: python scripts/bench_rbm.py [--repeats 5] [--device cpu] [--rows 60000] [--out table.md]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bench_common import interleaved, markdown_lines, save_results_json

from natural_bm import RBM, SGD
from natural_bm.datasets import load_mnist
from natural_bm.io import print_and_save
from natural_bm.training.precision import bfloat16_supported

DEVICE = "cpu"


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def bench_natural_bm(x: np.ndarray, seed: int, jit_compile="auto", algorithm="cd", cuda_graph=True,
                     precision="float32") -> float:
    rbm = RBM(784, 500, seed=seed, device=DEVICE).init_from_data(x)
    kw = {"n_chains": 100} if algorithm == "pcd" else {}
    rbm.compile(SGD(0.01), algorithm, k=1, jit_compile=jit_compile, cuda_graph=cuda_graph, precision=precision,
                **kw)
    _sync()
    t0 = time.perf_counter()
    rbm.fit(x, batch_size=100, epochs=1, verbose=0, seed=seed)
    _sync()
    return time.perf_counter() - t0


def bench_natural_bm_compiled(x: np.ndarray, seed: int) -> float:
    return bench_natural_bm(x, seed, jit_compile=True)


def bench_no_graph(x: np.ndarray, seed: int) -> float:
    return bench_natural_bm(x, seed, jit_compile=True, cuda_graph=False)


def bench_pcd_default(x: np.ndarray, seed: int) -> float:
    return bench_natural_bm(x, seed, algorithm="pcd")


def bench_bf16(x: np.ndarray, seed: int) -> float:
    return bench_natural_bm(x, seed, precision="bfloat16")


def bench_pcd_bf16(x: np.ndarray, seed: int) -> float:
    return bench_natural_bm(x, seed, algorithm="pcd", precision="bfloat16")


def bench_pcd(x: np.ndarray, seed: int) -> float:
    return bench_natural_bm(x, seed, jit_compile=True, algorithm="pcd")


def bench_pcd_no_graph(x: np.ndarray, seed: int) -> float:
    return bench_natural_bm(x, seed, jit_compile=True, algorithm="pcd", cuda_graph=False)


def bench_dbm(x: np.ndarray, seed: int) -> float:
    from natural_bm import DBM

    dbm = DBM([784, 500, 1000], seed=seed, device=DEVICE)
    dbm.compile(SGD(0.001, momentum=0.9), "mfpcd", n_chains=100, mf_steps=10, centering=True)
    _sync()
    t0 = time.perf_counter()
    dbm.fit(x, batch_size=100, epochs=1, verbose=0, seed=seed)
    _sync()
    return time.perf_counter() - t0


def bench_bare_torch(x: np.ndarray, seed: int) -> float:
    xt = torch.from_numpy(x).to(DEVICE)
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    W = torch.randn(784, 500, generator=g, device=DEVICE) * 0.01
    b, c = torch.zeros(784, device=DEVICE), torch.zeros(500, device=DEVICE)
    lr, n = 0.01, 100
    _sync()
    t0 = time.perf_counter()
    perm = torch.randperm(len(xt), generator=g, device=DEVICE)
    for i in range(0, len(xt), n):
        v0 = xt[perm[i : i + n]]
        h0 = torch.sigmoid(torch.addmm(c, v0, W))
        v1 = torch.bernoulli(torch.sigmoid(torch.addmm(b, torch.bernoulli(h0, generator=g), W.T)), generator=g)
        h1 = torch.sigmoid(torch.addmm(c, v1, W))
        W.add_(torch.cat([v0, v1]).T @ torch.cat([h0, -h1]), alpha=lr / n)
        b.add_(v0.mean(0) - v1.mean(0), alpha=lr)
        c.add_(h0.mean(0) - h1.mean(0), alpha=lr)
    _sync()
    return time.perf_counter() - t0


def bench_products_only(x: np.ndarray, seed: int, pcd: bool = False, dtype=torch.float32) -> float:
    """The floor: the products of one step per batch, nothing else. CD-1: v W, h W^T, v' W and the
    weight gradient (two 784x100x500 products), five 100x784x500 products; PCD-1 (100 chains): the
    data and the chains stacked in the first two (200 rows), the chains' v' W and the gradient, seven."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    W = (torch.randn(784, 500, generator=g, device=DEVICE) * 0.01).to(dtype)
    v = torch.from_numpy(x[:100]).to(DEVICE).to(dtype)
    h = torch.rand(100, 500, generator=g, device=DEVICE).to(dtype)
    first = torch.cat([v, v]) if pcd else v
    h_first = torch.cat([h, h]) if pcd else h
    _sync()
    t0 = time.perf_counter()
    for _ in range(0, len(x), 100):
        first @ W
        h_first @ W.T
        v @ W
        v.T @ h
        v.T @ h
    _sync()
    return time.perf_counter() - t0


def bench_sklearn(x: np.ndarray, seed: int) -> float:
    from sklearn.neural_network import BernoulliRBM

    rbm = BernoulliRBM(n_components=500, learning_rate=0.01, batch_size=100, n_iter=1, random_state=seed)
    t0 = time.perf_counter()
    rbm.fit(x)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--rows", type=int, default=60_000, help="training rows per epoch (fewer: a quick check)")
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument("--json", help="also write the benchmarks page's results file (docs/benchmarks/*.json)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass
    d = load_mnist("probability", n_train=60_000, n_valid=0)
    x = np.ascontiguousarray(d.train[: args.rows])
    t0 = time.perf_counter()
    bench_natural_bm(x[:2000], seed=0, jit_compile=True)  # compiles the step (once per process, as in training)
    bench_natural_bm(x[:2000], seed=0, jit_compile=True, algorithm="pcd")
    print(f"first call, with compilation: {time.perf_counter() - t0:.1f} s for 2,000 rows", flush=True)
    contestants = {
        "natural_bm": bench_natural_bm,
        "natural_bm, jit_compile=True": bench_natural_bm_compiled,
        "natural_bm PCD-1 (100 chains)": bench_pcd_default,
        "bare torch loop": bench_bare_torch,
        "the products alone (floor)": bench_products_only,
        "the PCD-1 products alone (floor)": lambda x, seed: bench_products_only(x, seed, pcd=True),
    }
    if bfloat16_supported(torch.device(DEVICE).type):
        contestants.update({
            "natural_bm, precision=bfloat16": bench_bf16,
            "natural_bm PCD-1, precision=bfloat16": bench_pcd_bf16,
            "the products alone in bfloat16 (floor)": lambda x, seed: bench_products_only(x, seed,
                                                                                          dtype=torch.bfloat16),
            "the PCD-1 products alone in bfloat16 (floor)": lambda x, seed: bench_products_only(
                x, seed, pcd=True, dtype=torch.bfloat16),
        })
    if DEVICE.startswith("cuda"):
        contestants.update({
            "natural_bm, cuda_graph=False (compiled step only)": bench_no_graph,
            "natural_bm PCD-1 (CUDA graph)": bench_pcd,
            "natural_bm PCD-1, cuda_graph=False": bench_pcd_no_graph,
            "natural_bm DBM 784-500-1000, centred mean-field PCD": bench_dbm,
        })
    if not DEVICE.startswith("cuda"):
        try:
            import sklearn  # noqa: F401

            contestants["scikit-learn BernoulliRBM"] = bench_sklearn
        except ImportError:
            print("scikit-learn not installed: skipping BernoulliRBM (pip install scikit-learn)")
    times = interleaved({name: (lambda r, fn=fn: fn(x, seed=r)) for name, fn in contestants.items()}, args.repeats)
    ours = statistics.median(times["natural_bm"])
    where = torch.cuda.get_device_name() if DEVICE.startswith("cuda") else f"{args.threads} CPU threads"
    floors = {name: statistics.median(ts) for name, ts in times.items() if "(floor)" in name}

    def floor_of(name: str) -> float:
        pcd, bf16 = "PCD" in name, "bfloat16" in name
        key = f"the {'PCD-1 ' if pcd else ''}products alone{' in bfloat16' if bf16 else ''} (floor)"
        return floors.get(key, floors["the products alone (floor)"])

    sklearn_med = statistics.median(times["scikit-learn BernoulliRBM"]) if "scikit-learn BernoulliRBM" in times \
        else None
    caption = f"RBM 784x500, CD-1 unless named, batch 100, {len(x):,} images per epoch, float32 unless named, {where}"
    header = ["implementation", f"median s/epoch ({args.repeats} interleaved runs)", "min", "x natural_bm",
              "x its floor"] + (["scikit-learn's time / this"] if sklearn_med else [])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        row = [name, f"{med:.2f}", f"{min(ts):.2f}", f"{med / ours:.2f}x", f"{med / floor_of(name):.2f}x"]
        rows.append(row + ([f"{sklearn_med / med:.2f}x"] if sklearn_med else []))
    lines = markdown_lines(caption, header, rows)
    print_and_save("\n".join(lines), args.out)
    if args.json:
        save_results_json(args.json, title=f"RBM training, {DEVICE.upper()}: defaults, floors and bfloat16",
                          order=11, caption=caption + f"; {args.repeats} interleaved runs, medians; each row "
                          "against its own floor (CD-1 or PCD-1 products, float32 or bfloat16)"
                          + (" and against scikit-learn" if sklearn_med else ""), header=header, rows=rows,
                          source="issue 32", conditions="quiet (nothing else running)")


if __name__ == "__main__":
    main()
