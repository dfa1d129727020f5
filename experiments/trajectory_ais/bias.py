"""The training chains' bias on a small model: ``TrainingChainsAIS`` against exact log Z, by chains and step size.

A 12-8 RBM (float64) trained 20 epochs with PCD-1 on noisy copies of 4 binary prototypes (1,000 rows,
batches of 50), the training chains' trajectory started from the exact log Z at the first update (or,
``start_epoch`` 1, at the end of the first epoch); per setting (lr, momentum, persistent chains): the range
of the exact log Z over the run, the largest and the last error of the trajectory, its lowest effective
sample size. The bias of the training chains (the step depends on the chains that weigh it) scales as
lr / n_chains; the spread of the weights with the steps' noise does not fall with more chains.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import Callback
from natural_bm.estimators import log_partition_exact
from natural_bm.estimators.trajectory import TrainingChainsAIS
from natural_bm.io import atomic_write_text

SETTINGS = [(0.1, 0.9, 100), (0.1, 0.0, 100), (0.01, 0.0, 100), (0.01, 0.0, 1000), (0.05, 0.5, 1000),
            (0.05, 0.5, 5000), (0.1, 0.5, 10000)]


def prototype_data(n_visible=12, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    protos = (rng.random((4, n_visible)) < 0.5).astype(np.float32)
    x = protos[rng.integers(0, 4, n)]
    return np.where(rng.random(x.shape) < 0.05, 1 - x, x).astype(np.float32)


class Probe(Callback):
    def __init__(self, start_epoch: int) -> None:
        super().__init__()
        self.start_epoch, self.rows = start_epoch, []

    def on_train_begin(self, logs=None):
        self.est = TrainingChainsAIS(self.model)
        if self.start_epoch == 0:
            self.est.start(log_partition_exact(self.model, progress=False))

    def on_train_batch_end(self, batch, logs=None):
        if self.est.started:
            self.est.advance(self.model.trainer.model_chains())

    def on_epoch_end(self, epoch, logs=None):
        z = log_partition_exact(self.model, progress=False)
        if not self.est.started and epoch + 1 == self.start_epoch:
            self.est.start(z)
        self.rows.append({"exact": z, "error": self.est.logZ - z if self.est.started else None, "ess": self.est.ess})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    x = prototype_data()
    results = []
    for lr, momentum, n_chains in SETTINGS:
        for start_epoch in (0, 1):
            m = RBM(12, 8, seed=0, dtype=torch.float64).init_from_data(x)
            m.compile(SGD(lr, momentum=momentum), "pcd", n_chains=n_chains, k=1)
            probe = Probe(start_epoch)
            m.fit(x, batch_size=50, epochs=20, verbose=0, seed=0, callbacks=[probe])
            exact = [r["exact"] for r in probe.rows]
            errors = [r["error"] for r in probe.rows if r["error"] is not None]
            row = {"lr": lr, "momentum": momentum, "n_chains": n_chains, "start_epoch": start_epoch,
                   "logZ_range": max(exact) - min(exact), "largest_abs_error": max(map(abs, errors)),
                   "last_error": errors[-1],
                   "lowest_ess": min(r["ess"] for r in probe.rows if not math.isnan(r["ess"]))}
            results.append(row)
            print(row, flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    atomic_write_text(Path(args.out), json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
        "git_commit": commit, "model": "RBM 12-8 float64, PCD-1, batches of 50, 20 epochs, 1,000 prototype rows",
        "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
