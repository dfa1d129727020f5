"""scikit-learn's 8x8 handwritten digits (1,797 images, grey levels 0-16), for binary or Gaussian units.

It ships inside scikit-learn, so it needs no download: the real-valued data
set of the library's Gaussian-unit examples. The split is a seeded
permutation: 1,197 training, 300 validation and 300 test images.

Kinds: ``"probability"`` (grey levels / 16, in [0, 1]), ``"sampled"`` (one
stochastic binarisation, seeded), ``"threshold"`` (> 0.5), and
``"standardized"`` (every column minus its training mean, divided by its
training standard deviation; constant columns stay 0): real values for
Gaussian visible units with sigma = 1.
"""

from __future__ import annotations

import numpy as np

from natural_bm.datasets.mnist import Dataset, binarize

KINDS = ("probability", "sampled", "threshold", "standardized")
N_VALID = N_TEST = 300


def load_digits(kind: str = "standardized", seed: int = 0) -> Dataset:
    """The digits split into train, valid and test (see the module docstring); float32 arrays (n, 64)."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}.")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("the digits data set ships with scikit-learn: pip install scikit-learn.") from None
    raw = sklearn_digits()
    order = np.random.default_rng(seed).permutation(len(raw.target))
    x = (raw.data[order] / 16.0).astype(np.float32)
    y = raw.target[order].astype(np.int64)
    n_train = len(y) - N_VALID - N_TEST
    cut = [slice(0, n_train), slice(n_train, n_train + N_VALID), slice(n_train + N_VALID, None)]
    if kind == "standardized":
        mean, std = x[cut[0]].mean(0), x[cut[0]].std(0)
        x = ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    elif kind != "probability":
        x = binarize(x, kind, np.random.default_rng(seed + 1))
    return Dataset(train=x[cut[0]], valid=x[cut[1]], test=x[cut[2]], train_labels=y[cut[0]],
                   valid_labels=y[cut[1]], test_labels=y[cut[2]], kind=kind, image_shape=(8, 8))
