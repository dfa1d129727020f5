"""Scaling over processes: data-parallel training and sharded AIS under torchrun, 1 to N processes.

For each number of processes P, launches ``torchrun --nproc-per-node P`` on this script's worker,
which times (one thread per process, gloo on CPUs, NCCL with --device cuda):

* one epoch of PCD-1 training of a 784-500 RBM on ``--rows`` MNIST rows (``--batch`` 100, 100 chains), after
  one warm-up epoch;
* forward AIS of that RBM, 100 runs x ``--betas`` betas, eager (no compilation in the timing).

Prints a markdown table: seconds per job, speed-up against one process, and the bytes all-reduced
per training update (the statistics of every parameter and the loss, in the model's dtype).

Usage: python scripts/bench_scale.py [--procs 1,2] [--rows 10000] [--batch 100] [--betas 2000] [--device cpu]
                                    [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def worker(args) -> None:
    import torch

    torch.set_num_threads(1)
    from natural_bm import RBM, SGD
    from natural_bm import distributed as dist
    from natural_bm.datasets import load_mnist
    from natural_bm.estimators import AIS, EngineOptions

    dist.init_from_environment()
    x = load_mnist("sampled", n_train=args.rows, n_valid=0).train
    m = RBM(784, 500, seed=0, device=args.device).init_from_data(x)
    m.compile(SGD(0.01, momentum=0.5), "pcd", n_chains=100, jit_compile=False)
    m.fit(x, batch_size=args.batch, epochs=1, verbose=0, seed=0)  # warm-up
    dist.barrier()
    t0 = time.perf_counter()
    m.fit(x, batch_size=args.batch, epochs=2, initial_epoch=1, verbose=0, seed=0)
    dist.barrier()
    t_epoch = time.perf_counter() - t0
    t0 = time.perf_counter()
    AIS(m, data=x, n_runs=100, n_betas=args.betas, seed=0, progress=False,
        engine=EngineOptions(jit_compile=False)).run_logZ()
    dist.barrier()
    t_ais = time.perf_counter() - t0
    n_params = sum(p.numel() for p in m.parameter_dict().values())
    if dist.rank() == 0:
        print(json.dumps({"procs": dist.world_size(), "epoch_s": t_epoch, "ais_s": t_ais,
                          "bytes_per_update": (n_params + 1) * m.W.element_size()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--betas", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for p in [int(v) for v in args.procs.split(",")]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={p}", __file__,
               "--worker", "--rows", str(args.rows), "--betas", str(args.betas), "--device", args.device,
               "--batch", str(args.batch)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(f"{p} processes failed:\n{proc.stderr[-2000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    base = rows[0]
    lines = [f"| processes | PCD-1 epoch, 784-500, {args.rows} rows, batch {args.batch} (s) | speed-up "
             f"| AIS 100 x {args.betas} betas (s) | speed-up | all-reduced per update |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['procs']} | {r['epoch_s']:.2f} | {base['epoch_s'] / r['epoch_s']:.2f} | {r['ais_s']:.2f} "
                     f"| {base['ais_s'] / r['ais_s']:.2f} | {r['bytes_per_update'] / 1e6:.2f} MB |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
