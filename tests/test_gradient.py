"""The training update is positive minus negative statistics: check it against
the exact log-likelihood gradient of tiny RBMs."""

import numpy as np
import pytest
import torch
from conftest import random_rbm
from reference import exact_gradient, free_energy, log_z, params

from natural_bm.training import ContrastiveDivergence, ExactGradient, PersistentContrastiveDivergence


def _data(n=40, nv=6, seed=0):
    return (np.random.default_rng(seed).random((n, nv)) < 0.4).astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_statistics_equal_the_enumerated_gradient(seed):
    m = random_rbm(6, 4, scale=1.0, seed=seed)
    data = _data(seed=seed)
    grads, _, _ = ExactGradient().step(m, torch.from_numpy(data), None, torch.Generator().manual_seed(0))
    ref = exact_gradient(*params(m), data)
    for k in ref:
        np.testing.assert_allclose(grads[k].numpy(), ref[k], atol=1e-6, rtol=0)


def test_exact_gradient_equals_finite_differences_of_the_log_likelihood():
    m = random_rbm(5, 3, scale=0.7, seed=3)
    data = _data(30, 5, seed=3)
    W, b, c = params(m)

    def mean_ll(W, b, c):
        return float(np.mean(-free_energy(W, b, c, data)) - log_z(W, b, c))

    grads, _, _ = ExactGradient().step(m, torch.from_numpy(data), None, None)
    eps = 1e-6
    for i, j in [(0, 0), (2, 1), (4, 2)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        fd = (mean_ll(Wp, b, c) - mean_ll(Wm, b, c)) / (2 * eps)
        assert abs(fd - grads["W"][i, j].item()) < 1e-6
    bp, bm = b.copy(), b.copy()
    bp[1] += eps
    bm[1] -= eps
    assert abs((mean_ll(W, bp, c) - mean_ll(W, bm, c)) / (2 * eps) - grads["vbias"][1].item()) < 1e-6


def _max_err(alg, m, data, ref, seed=0):
    x = torch.from_numpy(data)
    grads, _, _ = alg.step(m, x, alg.init(m, x, None), torch.Generator().manual_seed(seed))
    return max(np.abs(grads[k].numpy() - ref[k]).max() for k in ref)


def test_cd_with_large_k_approaches_the_exact_gradient():
    m = random_rbm(6, 4, scale=1.5, seed=4)
    data = np.repeat(_data(20, 6, seed=4), 2000, axis=0)  # many chains average out sampling noise
    ref = exact_gradient(*params(m), data)
    err1 = _max_err(ContrastiveDivergence(k=1), m, data, ref)
    err200 = _max_err(ContrastiveDivergence(k=200), m, data, ref)
    assert err200 < 0.02, err200
    assert err200 < err1 / 3, (err1, err200)


def test_pcd_with_mixed_chains_gives_the_exact_gradient():
    m = random_rbm(6, 4, scale=1.0, seed=5)
    data = _data(20, 6, seed=5)
    ref = exact_gradient(*params(m), data)
    pcd = PersistentContrastiveDivergence(k=100, n_chains=40000)
    state = pcd.init(m, torch.from_numpy(data), torch.Generator().manual_seed(0))
    grads, _, state = pcd.step(m, torch.from_numpy(data), state, torch.Generator().manual_seed(1))
    for k in ref:
        np.testing.assert_allclose(grads[k].numpy(), ref[k], atol=0.02)
    assert state.chains.shape == (40000, 6)


def test_weight_decay_adds_the_penalty_gradient():
    from natural_bm.training import apply_weight_decay

    W = torch.tensor([[0.5, -2.0], [0.0, 1.0]])
    g = {"W": torch.zeros(2, 2), "vbias": torch.zeros(2)}
    apply_weight_decay(g, {"W": W, "vbias": torch.ones(2)}, l1=0.1, l2=0.01)
    np.testing.assert_allclose(g["W"].numpy(), -0.01 * W.numpy() - 0.1 * np.sign(W.numpy()), atol=1e-7)
    assert torch.all(g["vbias"] == 0)
