"""Where a GPU's time goes in a training epoch and in AIS: kernel time against wall time.

For each job it prints the wall time, the summed device time of its kernels
(torch.profiler) and the top kernels. When the kernels' sum is far below the
wall time the job is launch- or Python-bound (CUDA graphs help); when they are
close, only fewer or faster kernels help.

Jobs (784x500 RBM, float32, MNIST grey levels):
* one CD-1 epoch through ``fit`` without the CUDA-graph update (``cuda_graph=False``),
* the same with it (the graph's kernels appear as one launch each),
* AIS, 100 runs x ``--betas`` betas, without and with CUDA-graph replay.

Usage: python scripts/profile_gpu.py [--rows 60000] [--betas 14501] [--out profile.txt]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from natural_bm import RBM, SGD
from natural_bm.datasets import load_mnist
from natural_bm.estimators import AIS, EngineOptions, default_betas


def _device_total_us(prof) -> float:
    return sum(e.self_device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA")


def _profiled(name: str, fn, lines: list[str]) -> None:
    fn()  # warm-up: compilation, capture, cuBLAS workspaces
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    kernels = _device_total_us(prof) / 1e6
    lines += [f"## {name}", f"wall {wall:.3f} s (profiled), kernels {kernels:.3f} s on the device", "",
              prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=12), ""]
    print("\n".join(lines[-5:]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--betas", type=int, default=14_501)
    parser.add_argument("--out")
    args = parser.parse_args()
    x = np.ascontiguousarray(load_mnist("probability", n_train=60_000, n_valid=0).train[: args.rows])
    lines = [f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {len(x):,} rows, {args.betas:,} betas", ""]

    def epoch(cuda_graph: bool):
        def run():
            rbm = RBM(784, 500, seed=0, device="cuda").init_from_data(x)
            rbm.compile(SGD(0.01), "cd", k=1, jit_compile=True, cuda_graph=cuda_graph)
            rbm.fit(x, batch_size=100, epochs=1, verbose=0, seed=0)
        return run

    rbm = RBM(784, 500, seed=0, device="cuda").init_from_data(x)
    betas = default_betas(args.betas)

    def ais(cuda_graph: bool):
        return lambda: AIS(rbm, n_runs=100, betas=betas, base="uniform", seed=0, progress=False,
                           engine=EngineOptions(cuda_graph=cuda_graph)).run_logZ()

    _profiled("CD-1 epoch, cuda_graph=False", epoch(False), lines)
    _profiled("CD-1 epoch, CUDA graph", epoch(True), lines)
    _profiled("AIS, cuda_graph=False", ais(False), lines)
    _profiled("AIS, CUDA graph", ais(True), lines)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
