"""Data sets: MNIST (file search, checksums, binarisations), scikit-learn's digits (real-valued or
binarised), bars and stripes, and your own files (in memory, or memory-mapped when larger)."""

from natural_bm.datasets.arrays import load_array, load_files
from natural_bm.datasets.digits import load_digits
from natural_bm.datasets.mapped import MappedRows, open_npy
from natural_bm.datasets.matrix import DataFileError
from natural_bm.datasets.mnist import Dataset, load_mnist
from natural_bm.datasets.synthetic import (
    bars_and_stripes,
    bars_and_stripes_log_likelihood,
    bars_and_stripes_patterns,
)

__all__ = [
    "DataFileError",
    "Dataset",
    "MappedRows",
    "bars_and_stripes",
    "bars_and_stripes_log_likelihood",
    "bars_and_stripes_patterns",
    "load_array",
    "load_digits",
    "load_files",
    "load_mnist",
    "open_npy",
]
