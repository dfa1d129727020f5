"""The cost of trajectory AIS (``TrajectoryAISCallback``) per epoch beside the training epoch's.

Trains an RBM with PCD-1 on MNIST with the callback and prints, per epoch, the training time, the
callback's time split into its annealing (``TrajectoryAIS.start`` at the first epoch, ``advance``) and its
log-likelihoods (a free
energy of every monitoring and validation row), the move's steps and resamplings, and its log Z, then a
markdown row of the medians::

    OMP_NUM_THREADS=1 python scripts/bench_trajectory.py                 # 784x500, 60,000 images, 5 epochs
    OMP_NUM_THREADS=1 python scripts/bench_trajectory.py --hidden 20 --n-train 2000 --epochs 2   # a quick check

Time it on an idle machine: the numbers are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import LambdaCallback, TrajectoryAISCallback
from natural_bm.datasets import load_mnist


class TimedTrajectory(TrajectoryAISCallback):
    """The callback with its epoch-end work timed: ``times[epoch] = (start, annealing s (the start's move at
    the first epoch, then each epoch's), total s)``."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.times: dict[int, tuple[float, float, float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        est = self.estimator
        methods, moved = {"start": est.start, "advance": est.advance}, []

        def timed(fn):
            def run(*args):
                t = time.perf_counter()
                out = fn(*args)
                moved.append(time.perf_counter() - t)
                return out
            return run

        for name, fn in methods.items():
            setattr(est, name, timed(fn))
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            for name in methods:
                delattr(est, name)
        self.times[epoch] = (start, sum(moved), time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--n-train", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--n-chains", type=int, default=100, help="the callback's chains")
    ap.add_argument("--max-steps", type=int, default=1000, help="the callback's most steps per move")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = load_mnist("sampled", path=os.environ.get("NATURAL_BM_DATA"), n_train=args.n_train,
                      n_valid=min(10000, max(1, args.n_train // 5)), download=False)
    model = RBM(784, args.hidden, seed=args.seed).init_from_data(data.train)
    model.compile(SGD(args.lr, momentum=0.9), "pcd", n_chains=100, k=1)
    traj = TimedTrajectory(n_chains=args.n_chains, max_steps=args.max_steps, seed=args.seed, anchor="base")
    begins: dict[int, float] = {}
    clock = LambdaCallback(on_epoch_begin=lambda epoch, logs: begins.__setitem__(epoch, time.perf_counter()))
    print(f"RBM 784x{args.hidden}, PCD-1, lr {args.lr}, {args.n_train} images, {torch.get_num_threads()} thread(s); "
          f"trajectory AIS with {args.n_chains} chains, at most {args.max_steps} steps a move")
    hist = model.fit(data.train, batch_size=100, epochs=args.epochs, verbose=0, seed=args.seed,
                     validation_data=data.valid, callbacks=[traj, clock]).history
    print("| epoch | epoch s (fit) | trajectory s | of which annealing s | of which log-likelihoods s | steps | "
          "resamplings | log Z |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for i, epoch in enumerate(sorted(traj.times)):
        start, move, total = traj.times[epoch]
        train = start - begins[epoch]
        rows.append((train, total, move))
        print(f"| {epoch} | {train:.2f} | {total:.2f} | {move:.2f} | {total - move:.2f} | "
              f"{hist['steps_trajectory'][i]:.0f} | {hist['resamplings_trajectory'][i]:.0f} | "
              f"{hist['logZ_trajectory'][i]:.2f} |")
    train, total, move = (statistics.median(c) for c in zip(*rows, strict=True))
    print(f"\nmedian: training {train:.2f} s an epoch, trajectory AIS {total:.2f} s ({total / train:.1%} of it; the "
          f"annealing {move:.2f} s, the log-likelihoods {total - move:.2f} s)")


if __name__ == "__main__":
    main()
