import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from natural_bm import RBM  # noqa: E402

MNIST_DIR = os.environ.get("NATURAL_BM_DATA") or str(Path(__file__).parents[2] / "shared" / "data" / "mnist")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("NATURAL_BM_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: a faster test covers it; run with --runslow or NATURAL_BM_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; covered by a faster test in the default run")
    config.addinivalue_line("markers", "mnist: needs the MNIST files ($NATURAL_BM_DATA)")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:torch.*")
    # Under pytest-xdist (make test runs one worker per core) each worker gets one thread, so the workers
    # do not oversubscribe the cores; alone, a process gets at most two.
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads()))


def randomize(model, scale: float = 1.0, seed: int = 0):
    """Every parameter of ``model`` set to ``scale`` times N(0, 1) draws (float64, from ``seed``, in
    parameter order); returns the model. Non-zero weights and biases make brute-force checks bite."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def random_rbm(n_visible=6, n_hidden=4, scale=1.0, seed=0, dtype=torch.float64) -> RBM:
    """An RBM with non-zero random weights and biases (never all zeros)."""
    return randomize(RBM(n_visible, n_hidden, dtype=dtype), scale, seed)


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


# Property-based tests (Hypothesis): "quick", the default, tries few examples, the same ones every run;
# NATURAL_BM_HYPOTHESIS_PROFILE=nightly tries 50 times as many, new ones each run. Tests scale their
# own counts from settings.default.max_examples.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("quick", max_examples=40, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=2000, derandomize=False, deadline=None, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("NATURAL_BM_HYPOTHESIS_PROFILE", "quick"))
