"""MNIST classification from RBM features: logistic regression on p(h = 1 | v) of natural_bm's RBM
(through natural_bm.sklearn.RBMTransformer), beside raw pixels and scikit-learn's BernoulliRBM with the
same size, learning rate, batch size and epochs.

Grey levels in [0, 1] (MNIST "probability"); the first --n-train training images, the 10,000 test images.
Writes a Markdown table (accuracy, wall time) to --out.

Usage: python experiments/mnist_features/run.py [--n-train 20000] [--components 256] [--epochs 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline

from natural_bm.datasets import load_mnist
from natural_bm.io import print_and_save
from natural_bm.sklearn import RBMTransformer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--components", type=int, default=256)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--out", default="mnist_features.md")
    a = p.parse_args()
    d = load_mnist("probability", n_train=a.n_train, n_valid=0)
    x, y, xt, yt = d.train, d.train_labels, d.test, d.test_labels
    clf = {"C": 1.0, "max_iter": 500}
    models = {
        "raw pixels": Pipeline([("lr", LogisticRegression(**clf))]),
        f"natural_bm RBM-{a.components} (PCD-1, momentum 0.5)": Pipeline([
            ("rbm", RBMTransformer(a.components, learning_rate=a.lr, batch_size=a.batch_size, n_iter=a.epochs,
                                   random_state=0)),
            ("lr", LogisticRegression(**clf))]),
        f"scikit-learn BernoulliRBM-{a.components} (PCD-1)": Pipeline([
            ("rbm", BernoulliRBM(a.components, learning_rate=a.lr, batch_size=a.batch_size, n_iter=a.epochs,
                                 random_state=0)),
            ("lr", LogisticRegression(**clf))]),
    }
    rows = [f"MNIST, {a.n_train} training and {len(yt)} test images, grey levels; {a.epochs} epochs, learning "
            f"rate {a.lr}, batch {a.batch_size}; logistic regression C=1", "",
            "| features | test accuracy | fit time (s) |", "|---|---|---|"]
    for name, pipe in models.items():
        t = time.perf_counter()
        pipe.fit(x, y)
        wall = time.perf_counter() - t
        acc = float(np.mean(pipe.predict(xt) == yt))
        rows.append(f"| {name} | {acc:.4f} | {wall:.0f} |")
        print(rows[-1], flush=True)
    print_and_save("\n".join(rows), a.out)


if __name__ == "__main__":
    main()
