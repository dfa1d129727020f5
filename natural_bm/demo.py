"""The main job of ``make demo``: a 500-hidden-unit RBM trained on MNIST with PCD.

Writes a results folder (``config.json``, ``log.csv``, ``model.pt``, and
whatever the later stages add) and prints where it is. About 1 to 2 minutes on
2 CPU cores with the default 15 epochs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import CSVLogger
from natural_bm.datasets import load_mnist
from natural_bm.io import atomic_write_text

DEFAULTS = {
    "n_hidden": 500,
    "epochs": 15,
    "batch_size": 100,
    "lr": 0.01,
    "momentum": 0.9,
    "algorithm": "pcd",
    "k": 1,
    "n_chains": 100,
    "l2": 1e-4,
    "kind": "probability",
    "seed": 0,
}


def run(out: str | Path | None = None, **overrides) -> Path:
    """Train the demo RBM; returns the results folder."""
    cfg = {**DEFAULTS, **overrides}
    out = Path(out or Path("results") / time.strftime("demo-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    data = load_mnist(cfg["kind"])
    torch.manual_seed(cfg["seed"])
    rbm = RBM(784, cfg["n_hidden"], seed=cfg["seed"]).init_from_data(data.train)
    rbm.compile(SGD(cfg["lr"], momentum=cfg["momentum"]), cfg["algorithm"], k=cfg["k"],
                n_chains=cfg["n_chains"], l2=cfg["l2"])
    t0 = time.perf_counter()
    rbm.fit(data.train, batch_size=cfg["batch_size"], epochs=cfg["epochs"], validation_data=data.valid,
            callbacks=[CSVLogger(out / "log.csv")], seed=cfg["seed"])
    seconds = time.perf_counter() - t0
    rbm.save(out / "model.pt")
    print(f"trained {cfg['epochs']} epochs in {seconds:.1f} s; results in {out.resolve()}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="natural-bm demo", description=__doc__)
    parser.add_argument("--out", help="results folder (default results/demo-<time>)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="number of epochs")
    args = parser.parse_args(argv)
    run(args.out, epochs=args.epochs)


if __name__ == "__main__":
    main()
