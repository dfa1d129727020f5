"""MNIST handwritten digits, as used for Boltzmann machines.

``load_mnist(kind=...)`` returns train/valid/test splits (50,000/10,000/10,000
by default: the valid split is the last ``n_valid`` rows of the official
training file; test is the official test file), as float32 arrays in [0, 1]
of shape (n, 784), in one of three kinds:

* ``"probability"``: grey levels / 255 (natural_bm trains on these);
* ``"sampled"``: one fixed stochastic binarisation, each pixel set to 1 with
  probability equal to its grey level, drawn once with
  ``numpy.random.default_rng(SAMPLED_SEED)`` over the 60,000 training images
  then the 10,000 test images (so an image's binarisation does not depend on
  the split sizes). This is the binarised MNIST of Salakhutdinov & Murray (2008);
* ``"threshold"``: pixel > 0.5 (PyDeep's and paysage's convention).

Published numbers are comparable only at equal binarisation.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from natural_bm.datasets.files import fetch

SAMPLED_SEED = 1234
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
KINDS = ("probability", "sampled", "threshold")
IMAGE_SHAPE = (28, 28)


@dataclasses.dataclass
class Dataset:
    """Splits of a data set: arrays (n, n_features) float32 in [0, 1] and int labels."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    valid_labels: np.ndarray
    test_labels: np.ndarray
    kind: str
    image_shape: tuple[int, int] = IMAGE_SHAPE


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode IDX bytes (big-endian header, uint8 payload) into an array."""
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0:
        raise ValueError("not an IDX file (bad magic number).")
    if raw[2] != 0x08:
        raise ValueError(f"IDX data type {raw[2]:#x} is not uint8.")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    data = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"IDX payload has {data.size} bytes, header says {dims}.")
    return data.reshape(dims)


def load_mnist_raw(path: str | os.PathLike | None = None, download: bool = True) -> dict[str, np.ndarray]:
    """The four MNIST arrays as uint8 (images flattened to 784 columns)."""
    out = {}
    for key, (name, sha) in FILES.items():
        arr = parse_idx(fetch(name, sha, MIRRORS, path=path, download_missing=download))
        out[key] = arr.reshape(arr.shape[0], -1) if key.endswith("images") else arr
    return out


def binarize(images01: np.ndarray, kind: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Apply ``kind`` to grey levels in [0, 1] (float32 result)."""
    if kind == "probability":
        return images01
    if kind == "threshold":
        return (images01 > 0.5).astype(np.float32)
    if kind == "sampled":
        return (rng.random(images01.shape, dtype=np.float32) < images01).astype(np.float32)
    raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}.")


def load_mnist(
    kind: str = "probability",
    path: str | os.PathLike | None = None,
    n_train: int = 50_000,
    n_valid: int = 10_000,
    download: bool = True,
) -> Dataset:
    """Load MNIST splits; see the module docstring for ``kind`` and the file search."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}.")
    if n_train < 1 or n_valid < 0 or n_train + n_valid > 60_000:
        raise ValueError(
            f"need n_train >= 1, n_valid >= 0 and n_train + n_valid <= 60000; got {n_train}, {n_valid}."
        )
    raw = load_mnist_raw(path, download)
    train_all = raw["train_images"].astype(np.float32) / 255.0
    test = raw["test_images"].astype(np.float32) / 255.0
    rng = np.random.default_rng(SAMPLED_SEED)
    train_all = binarize(train_all, kind, rng)
    test = binarize(test, kind, rng)
    lab = raw["train_labels"].astype(np.int64)
    valid_slice = slice(60_000 - n_valid, 60_000)
    return Dataset(
        train=train_all[:n_train],
        valid=train_all[valid_slice],
        test=test,
        train_labels=lab[:n_train],
        valid_labels=lab[valid_slice],
        test_labels=raw["test_labels"].astype(np.int64),
        kind=kind,
    )
