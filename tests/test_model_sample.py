"""model.sample and model.sample_grid (issue 36: a grid in one line): the samples follow the model's exact
distribution (enumerated), for the Gibbs and the tempering sampler; seeds, starts, pictures read back."""

import itertools

import numpy as np
import pytest
import torch

from natural_bm import DBM, RBM
from natural_bm.viz import read_tiles


def _exact_visible_distribution(m: RBM) -> np.ndarray:
    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=m.n_visible)), dtype=m.dtype)
    log_p = -m.free_energy(v).double()
    return torch.softmax(log_p, 0).numpy()


def _frequencies(samples: torch.Tensor) -> np.ndarray:
    n = samples.shape[1]
    codes = (samples.long() * (2 ** torch.arange(n - 1, -1, -1))).sum(1).numpy()
    return np.bincount(codes, minlength=2**n) / len(codes)


@pytest.mark.parametrize("sampler", ["gibbs", "pt"])
def test_samples_follow_the_exact_distribution(sampler):
    m = RBM(5, 3, seed=0, weight_scale=1.0, dtype=torch.float64)
    p = _exact_visible_distribution(m)
    x = m.sample(20000, steps=30, sampler=sampler, seed=1)
    assert x.shape == (20000, 5) and set(torch.unique(x).tolist()) <= {0.0, 1.0}
    tv = 0.5 * np.abs(_frequencies(x) - p).sum()
    assert tv < 0.02, tv  # sampling noise of 20,000 draws over 32 states is about 0.01


def test_seed_start_means_and_bad_input():
    m = DBM([6, 4, 3], seed=0)
    a, b = m.sample(7, 5, seed=3), m.sample(7, 5, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, m.sample(7, 5, seed=4))
    start = torch.ones(7, 6)
    assert torch.equal(m.sample(7, 0, init=start), start)  # zero sweeps: the start itself
    means = m.sample(7, 3, means=True)
    assert means.shape == (7, 6) and float(means.min()) >= 0 and float(means.max()) <= 1
    assert not set(torch.unique(means).tolist()) <= {0.0, 1.0}  # probabilities, not states
    with pytest.raises(ValueError, match="`sampler` must be 'gibbs' or 'pt'"):
        m.sample(3, 1, sampler="hmc")
    with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
        m.sample(0)
    with pytest.raises(ValueError, match="init"):
        m.sample(3, 1, init=torch.ones(3, 5))


def test_sample_grid_writes_the_means_it_draws(tmp_path):
    m = RBM(16, 8, seed=0, weight_scale=0.5)
    path = m.sample_grid(tmp_path / "grid.png", n=9, steps=4, seed=2)  # 4 x 4 tiles enlarged 4x ("auto")
    tiles = read_tiles(path, (4, 4), 9, 3, scale=4)
    np.testing.assert_allclose(tiles, m.sample(9, 4, seed=2, means=True).numpy(), atol=1 / 255 + 1e-6)
    with pytest.raises(ValueError, match="not a square image; give image_shape"):
        RBM(10, 3).sample_grid(tmp_path / "x.png", n=4, steps=1)
    assert RBM(10, 3).sample_grid(tmp_path / "y.png", n=4, steps=1, image_shape=(2, 5)).is_file()
