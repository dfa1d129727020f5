import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from natural_bm import RBM  # noqa: E402

MNIST_DIR = os.environ.get("NATURAL_BM_DATA") or str(Path(__file__).parents[2] / "shared" / "data" / "mnist")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; covered by a faster test in the default run")
    config.addinivalue_line("markers", "mnist: needs the MNIST files ($NATURAL_BM_DATA)")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:torch.*")
    torch.set_num_threads(min(2, torch.get_num_threads()))


def random_rbm(n_visible=6, n_hidden=4, scale=1.0, seed=0, dtype=torch.float64) -> RBM:
    """An RBM with non-zero random weights and biases (never all zeros)."""
    g = torch.Generator().manual_seed(seed)
    m = RBM(n_visible, n_hidden, dtype=dtype)
    with torch.no_grad():
        m.W.copy_(scale * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64))
        m.vbias.copy_(scale * torch.randn(n_visible, generator=g, dtype=torch.float64))
        m.hbias.copy_(scale * torch.randn(n_hidden, generator=g, dtype=torch.float64))
    return m


@pytest.fixture
def tiny_rbm():
    return random_rbm()


@pytest.fixture(scope="session")
def mnist_dir():
    if not Path(MNIST_DIR, "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("MNIST files not found; set NATURAL_BM_DATA")
    return MNIST_DIR


@pytest.fixture
def binary_data():
    rng = np.random.default_rng(0)
    return (rng.random((64, 6)) < 0.4).astype(np.float32)
