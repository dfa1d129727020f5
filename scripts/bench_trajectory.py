"""The cost of trajectory AIS (``TrajectoryAISCallback``) per epoch beside the training epoch's.

Trains an RBM with PCD-1 on MNIST with the callback and prints, per epoch, the training time (the
epoch's wall time less the callback's), the callback's time split into the own chains' annealing
(``TrajectoryAIS.start`` at the first epoch, ``advance``), the training chains' increments (two free
energies of the chains per batch, ``TrainingChainsAIS.advance``), the re-anchoring AIS and the rest
(log-likelihoods: a free energy of every monitoring and validation row), its steps and log Z, then a
markdown row of the medians::

    OMP_NUM_THREADS=1 python scripts/bench_trajectory.py                 # 784x500, 60,000 images, 5 epochs
    OMP_NUM_THREADS=1 python scripts/bench_trajectory.py --hidden 200 --lr 0.002 --chains training
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


class _Timer:
    """Wraps methods of an object, adding their wall time to ``seconds[label]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, obj, name: str, label: str) -> None:
        fn = getattr(obj, name)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t

        setattr(obj, name, timed)

    def take(self) -> dict[str, float]:
        out, self.seconds = self.seconds, {}
        return out


class TimedTrajectory(TrajectoryAISCallback):
    """The callback with its work timed: ``times[epoch] = {"annealing", "increments", "reanchoring",
    "epoch_end"}`` seconds (the epoch end includes the annealing and the re-anchoring)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.timer = _Timer()
        self.times: dict[int, dict[str, float]] = {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for name in ("start", "advance"):
            self.timer.wrap(self.estimator, name, "annealing")
        if self.training is not None:
            self.timer.wrap(self.training, "advance", "increments")
        self.timer.wrap(self, "_full_ais", "reanchoring")

    def on_epoch_end(self, epoch, logs=None):
        t = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        end = time.perf_counter() - t
        self.times[epoch] = {"epoch_end": end, **self.timer.take()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--n-train", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--chains", choices=("own", "training"), default="own", help="the callback's particles")
    ap.add_argument("--n-chains", type=int, default=100, help="the callback's own chains")
    ap.add_argument("--max-steps", type=int, default=1000, help="the callback's most steps per move")
    ap.add_argument("--reanchor-every", type=int, default=0, help="epochs between re-anchoring AIS runs")
    ap.add_argument("--ais-betas", type=int, default=5000, help="betas of a re-anchoring AIS")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = load_mnist("sampled", path=os.environ.get("NATURAL_BM_DATA"), n_train=args.n_train,
                      n_valid=min(10000, max(1, args.n_train // 5)), download=False)
    model = RBM(784, args.hidden, seed=args.seed).init_from_data(data.train)
    model.compile(SGD(args.lr, momentum=0.9), "pcd", n_chains=100, k=1)
    traj = TimedTrajectory(chains=args.chains, n_chains=args.n_chains, max_steps=args.max_steps, seed=args.seed,
                           anchor="base", reanchor_every=args.reanchor_every, ais_betas=args.ais_betas)
    begins: dict[int, float] = {}
    walls: dict[int, float] = {}
    clock = LambdaCallback(
        on_epoch_begin=lambda epoch, logs: begins.__setitem__(epoch, time.perf_counter()),
        on_epoch_end=lambda epoch, logs: walls.__setitem__(epoch, time.perf_counter() - begins[epoch]))
    print(f"RBM 784x{args.hidden}, PCD-1, lr {args.lr}, {args.n_train} images, {torch.get_num_threads()} thread(s); "
          f"trajectory AIS on the {args.chains} chains, re-anchored every {args.reanchor_every} epochs (0: never)")
    hist = model.fit(data.train, batch_size=100, epochs=args.epochs, verbose=0, seed=args.seed,
                     validation_data=data.valid, callbacks=[traj, clock]).history
    print("| epoch | training s | trajectory s | annealing s | increments s | re-anchoring s | log-likelihoods s | "
          "steps | log Z |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for i, epoch in enumerate(sorted(traj.times)):
        t = traj.times[epoch]
        anneal, inc, ais = (t.get(k, 0.0) for k in ("annealing", "increments", "reanchoring"))
        total = t["epoch_end"] + inc
        rest = t["epoch_end"] - anneal - ais
        train = walls[epoch] - total
        rows.append((train, total, anneal, inc, ais, rest))
        print(f"| {epoch} | {train:.2f} | {total:.2f} | {anneal:.2f} | {inc:.2f} | {ais:.2f} | {rest:.2f} | "
              f"{hist['steps_trajectory'][i]:.0f} | {hist['logZ_trajectory'][i]:.2f} |")
    train, total, anneal, inc, ais, rest = (statistics.median(c) for c in zip(*rows, strict=True))
    print(f"\nmedian: training {train:.2f} s an epoch, trajectory AIS {total:.2f} s ({total / train:.1%} of it; the "
          f"annealing {anneal:.2f} s, the increments {inc:.2f} s, the re-anchoring {ais:.2f} s, the log-likelihoods "
          f"{rest:.2f} s)")


if __name__ == "__main__":
    main()
