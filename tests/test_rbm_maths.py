"""RBM energies, free energies and conditionals against brute force."""

import numpy as np
import pytest
import torch
from conftest import random_rbm
from reference import all_states, energy, free_energy, log_joint_table, params
from scipy.special import logsumexp


@pytest.mark.parametrize("beta", [1.0, 0.37, 2.5])
def test_free_energy_equals_brute_force_marginalisation(beta):
    m = random_rbm(7, 5, scale=1.5, seed=1)
    W, b, c = params(m)
    V = all_states(7)
    ours = m.free_energy(torch.from_numpy(V), beta=beta).numpy()
    np.testing.assert_allclose(ours, free_energy(W, b, c, V, beta), rtol=0, atol=1e-10)


def test_free_energy_on_grey_levels_matches_formula():
    m = random_rbm(5, 3, seed=2)
    W, b, c = params(m)
    v = np.random.default_rng(0).random((10, 5))
    np.testing.assert_allclose(m.free_energy(torch.from_numpy(v)).numpy(), free_energy(W, b, c, v), atol=1e-10)


def test_energy_matches_definition():
    m = random_rbm(6, 4, seed=3)
    W, b, c = params(m)
    rng = np.random.default_rng(1)
    v, h = (rng.random((20, 6)) < 0.5) * 1.0, (rng.random((20, 4)) < 0.5) * 1.0
    ours = m.energy(torch.from_numpy(v), torch.from_numpy(h)).numpy()
    np.testing.assert_allclose(ours, energy(W, b, c, v, h), atol=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_conditionals_follow_bayes_rule(beta):
    m = random_rbm(5, 4, scale=1.2, seed=4)
    W, b, c = params(m)
    table, V, H = log_joint_table(W, b, c, beta)
    p = np.exp(table - logsumexp(table))
    # p(h_j = 1 | v) = sum_h p(v, h) h_j / p(v)
    p_h_given_v = (p @ H) / p.sum(1, keepdims=True)
    p_v_given_h = (p.T @ V) / p.sum(0)[:, None]
    np.testing.assert_allclose(m.prob_h_given_v(torch.from_numpy(V), beta).numpy(), p_h_given_v, atol=1e-12)
    np.testing.assert_allclose(m.prob_v_given_h(torch.from_numpy(H), beta).numpy(), p_v_given_h, atol=1e-12)


def test_gibbs_chain_samples_the_model_distribution():
    """Long Gibbs chains visit visible states with the exact marginal probabilities."""
    m = random_rbm(4, 3, scale=0.8, seed=5)
    W, b, c = params(m)
    table, V, _ = log_joint_table(W, b, c)
    p_v = np.exp(logsumexp(table, axis=1) - logsumexp(table))
    g = torch.Generator().manual_seed(0)
    v = torch.zeros(20000, 4, dtype=torch.float64)
    v = m.gibbs(v, k=30, generator=g)
    idx = (v.numpy() @ (2 ** np.arange(3, -1, -1))).astype(int)
    freq = np.bincount(idx, minlength=16) / len(idx)
    # standard error of a frequency ~ sqrt(p/n) <= 0.0036; allow 5 sigma
    np.testing.assert_allclose(freq, p_v, atol=0.018)


def test_samples_are_binary_and_follow_probabilities():
    m = random_rbm(6, 4, seed=6)
    v = torch.ones(50000, 6, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    h = m.sample_h(v, generator=g)
    assert set(torch.unique(h).tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(h.mean(0).numpy(), m.prob_h_given_v(v[:1])[0].numpy(), atol=0.01)


def test_init_from_data_matches_pixel_means():
    x = np.random.default_rng(0).random((500, 6)).astype(np.float32) ** 2
    m = random_rbm(6, 3)
    with torch.no_grad():
        m.W.zero_()
    m.init_from_data(x)
    # with zero weights, p(v_i = 1) = sigmoid(vbias_i) = data mean
    np.testing.assert_allclose(torch.sigmoid(m.vbias).numpy(), x.mean(0), atol=1e-6)


def test_orthogonal_init_is_orthogonal_times_scale():
    from natural_bm import RBM

    m = RBM(20, 8, init="orthogonal", weight_scale=0.5, seed=0, dtype=torch.float64)
    np.testing.assert_allclose((m.W.T @ m.W).numpy(), 0.25 * np.eye(8), atol=1e-12)


def test_pseudo_log_likelihood_is_unbiased_for_the_exact_pseudo_likelihood():
    m = random_rbm(5, 3, seed=7)
    W, b, c = params(m)
    v = np.array([[1.0, 0, 1, 1, 0]])
    # exact: sum_i log p(v_i | v_-i) = sum_i log sigmoid(F(flip_i v) - F(v))
    exact = 0.0
    for i in range(5):
        vf = v.copy()
        vf[0, i] = 1 - vf[0, i]
        d = free_energy(W, b, c, vf) - free_energy(W, b, c, v)
        exact += -np.log1p(np.exp(-d))[0]
    g = torch.Generator().manual_seed(0)
    est = m.pseudo_log_likelihood(torch.from_numpy(np.repeat(v, 40000, 0)), generator=g).mean().item()
    assert abs(est - exact) < 0.05 * abs(exact)


@pytest.mark.parametrize("up_factor", [1.0, 2.0])
def test_rbm_pseudo_log_likelihood_equals_the_two_free_energy_definition(up_factor):
    from natural_bm import RBM
    from natural_bm.models.base import BoltzmannMachine

    m = random_rbm(9, 4, seed=3)
    m2 = RBM(9, 4, dtype=torch.float64, up_factor=up_factor)
    m2.load_state_dict(m.state_dict())
    v = torch.from_numpy(np.random.default_rng(1).random((300, 9)))  # grey levels, not only 0/1
    ours = m2.pseudo_log_likelihood(v, generator=torch.Generator().manual_seed(5))
    generic = BoltzmannMachine.pseudo_log_likelihood(m2, v, generator=torch.Generator().manual_seed(5))
    np.testing.assert_allclose(ours.numpy(), generic.numpy(), rtol=1e-10, atol=1e-10)
