"""Record a training trajectory of the demo's recipe: the parameters and the persistent chains at every epoch end.

The demo (``natural_bm.demo``): an RBM 784 x ``--hidden`` trained with PCD-1 (100 chains, lr 0.002,
momentum 0.9, l2 1e-4, batches of 100) on MNIST grey levels binarised afresh per minibatch, seed 0.
Writes ``--out`` (a torch file): ``{"config": ..., "initial": params before the first update,
"epochs": [{"params": ..., "chains": (100, 784)}, ...]}``, float32 as trained, for ``compare.py`` to run
every estimator on the same trajectory. With ``--every-update`` it also follows log Z live with the
training-chain estimator (``TrainingChainsAIS``, an increment per update) and with 100 independent chains
on the same per-update path, and writes their per-epoch values into the file; neither touches the
training (its random numbers and weights are those of a run without them).

    OMP_NUM_THREADS=1 python experiments/trajectory_ais/record.py --hidden 200 --epochs 30 --out traj200.pt
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import Callback
from natural_bm.datasets import load_mnist
from natural_bm.estimators import log_partition_exact
from natural_bm.estimators.ais_steps import log_z_base
from natural_bm.estimators.trajectory import TrainingChainsAIS, TrajectoryAIS
from natural_bm.io import save_torch_checked
from natural_bm.rng import RandomSource

RECIPE = {"lr": 0.002, "momentum": 0.9, "l2": 1e-4, "n_chains": 100, "k": 1, "batch_size": 100, "seed": 0}


def params_of(model) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.parameter_dict().items()}


class Recorder(Callback):
    """The parameters and the training's chains at each epoch end; the epoch's training time."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[dict] = []
        self._t = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._t
        self.epochs.append({"params": params_of(self.model), "chains": self.model.trainer.model_chains().clone(),
                            "seconds": seconds})


class LiveTrainingChains(Callback):
    """``TrainingChainsAIS`` from the first update, its start level given; logs per epoch, and its cost."""

    produces_logs = True

    def __init__(self, log_z0: float) -> None:
        super().__init__()
        self.log_z0, self.rows, self.seconds = log_z0, [], 0.0

    def on_train_begin(self, logs=None):
        self.est = TrainingChainsAIS(self.model)
        self.est.start(self.log_z0)

    def on_train_batch_end(self, batch, logs=None):
        t = time.perf_counter()
        self.est.advance(self.model.trainer.model_chains())
        self.seconds += time.perf_counter() - t

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"logZ": self.est.logZ, "ess": self.est.ess, "seconds": self.seconds})
        self.seconds = 0.0


class LiveIndependentChains(Callback):
    """Chains of the probe's own on the training's per-update path: one Gibbs sweep at theta_t before each
    update (own random numbers), the increment theta_t -> theta_{t+1} after it (``TrainingChainsAIS`` on
    them): particles the steps do not depend on. They start as exact draws of the first parameters'
    zero-weight copy, at its closed-form log Z, with one importance step from there to the first parameters."""

    produces_logs = True

    def __init__(self, n_chains: int, seed: int) -> None:
        super().__init__()
        self.n_chains, self.seed, self.rows, self.seconds = n_chains, seed, [], 0.0

    def on_train_begin(self, logs=None):
        m = self.model
        self.gen = RandomSource(self.seed, m.device)
        self.est = TrainingChainsAIS(m)
        zero = m.detached_copy()
        with torch.no_grad():
            for name in m.weight_names:
                getattr(zero, name).zero_()
            self.chains = m.units[0].sample(zero.vbias.expand(self.n_chains, -1).contiguous(), 1.0, self.gen)
        target = params_of(m)
        set_params(m, params_of(zero))
        self.est.start(log_z_base(zero, [zero.vbias, zero.hbias]))
        set_params(m, target)
        self.est.advance(self.chains)  # the zero-weight copy -> the first parameters

    def on_train_batch_begin(self, batch, logs=None):
        t = time.perf_counter()
        with torch.no_grad():
            self.chains = self.model.gibbs(self.chains, 1, generator=self.gen)
        self.seconds += time.perf_counter() - t

    def on_train_batch_end(self, batch, logs=None):
        t = time.perf_counter()
        self.est.advance(self.chains)
        self.seconds += time.perf_counter() - t

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"logZ": self.est.logZ, "ess": self.est.ess, "seconds": self.seconds})
        self.seconds = 0.0


def set_params(model, params) -> None:
    with torch.no_grad():
        for k, p in model.parameter_dict().items():
            p.copy_(params[k])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n-train", type=int, default=50000)
    ap.add_argument("--every-update", action="store_true", help="also the training-chain estimator, live")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    r = RECIPE
    data = load_mnist("probability", path=os.environ.get("NATURAL_BM_DATA"), n_train=args.n_train, download=False)
    torch.manual_seed(r["seed"])
    model = RBM(784, args.hidden, seed=r["seed"]).init_from_data(data.train)
    model.compile(SGD(r["lr"], momentum=r["momentum"]), "pcd", k=r["k"], n_chains=r["n_chains"], l2=r["l2"])
    initial = params_of(model)
    rec = Recorder()
    callbacks = [rec]
    live = independent = None
    if args.every_update:
        # the start level: exact for small models, else annealed from the zero-weight copy (small weights)
        level = log_partition_exact(model.detached_copy(dtype=torch.float64), progress=False) if args.hidden <= 20 \
            else TrajectoryAIS(model, n_chains=1000, seed=r["seed"]).start()
        live = LiveTrainingChains(level)
        independent = LiveIndependentChains(100, r["seed"] + 12345)
        callbacks += [live, independent]
    model.fit(data.train, batch_size=r["batch_size"], epochs=args.epochs, verbose=0, seed=r["seed"], binarize=True,
              callbacks=callbacks)
    out = {"config": {**r, "hidden": args.hidden, "epochs": args.epochs, "n_train": args.n_train,
                      "data": "MNIST grey levels binarised per minibatch (fit(binarize=True))"},
           "initial": initial, "epochs": rec.epochs, "live_training_chains": None if live is None else live.rows,
           "live_independent_chains": None if independent is None else independent.rows}
    save_torch_checked(out, args.out)
    print(f"recorded {len(rec.epochs)} epochs into {args.out}; training "
          f"{sum(e['seconds'] for e in rec.epochs):.1f} s")


if __name__ == "__main__":
    main()
