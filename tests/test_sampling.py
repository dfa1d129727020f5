"""The Gibbs sampler against brute-force distributions of tiny models."""

import itertools

import numpy as np
import pytest
import torch
from conftest import random_rbm, randomize
from scipy.special import logsumexp

from natural_bm import DBM
from natural_bm.rng import RandomSource
from natural_bm.sampling import GibbsSampler, chains_to


def _exact_visible_distribution(model, beta):
    """p_beta(v) of every visible state by enumerating every layer (independent of the model's maths)."""
    sizes = model.layer_sizes
    states = [np.array(list(itertools.product([0.0, 1.0], repeat=n))) for n in sizes]
    W = {e: w.detach().double().numpy() for e, w in model.weights.items()}
    b = [x.detach().double().numpy() for x in model.biases]
    log_p = np.zeros([len(s) for s in states])
    for k, s in enumerate(states):
        shape = [1] * len(sizes)
        shape[k] = -1
        log_p = log_p + (s @ b[k]).reshape(shape)
    for (i, j), w in W.items():
        shape = [1] * len(sizes)
        shape[i], shape[j] = len(states[i]), len(states[j])
        log_p = log_p + (states[i] @ w @ states[j].T).reshape(shape)
    log_p = beta * log_p
    log_pv = logsumexp(log_p.reshape(len(states[0]), -1), axis=1)
    return np.exp(log_pv - logsumexp(log_pv))


def _codes(v):
    return (v.long() * (2 ** torch.arange(v.shape[1] - 1, -1, -1))).sum(1).numpy()


@pytest.mark.parametrize("which,beta", [("rbm", 1.0), ("rbm", 0.5), ("dbm", 1.0), ("dbm", 0.7)])
def test_sampler_draws_the_models_distribution(which, beta):
    """20,000 chains after 30 sweeps: the visible histogram matches p_beta(v) by brute force (total
    variation below 0.03; a sampler that skipped a layer or the temperature misses by more than 0.1)."""
    if which == "rbm":
        model = random_rbm(4, 3, scale=0.8, seed=1)
    else:
        model = DBM([3, 3, 2], seed=0, dtype=torch.float64)
        randomize(model, 0.9, seed=3)
    exact = _exact_visible_distribution(model, beta)
    n_vis = model.n_visible
    gen = RandomSource(7)
    sampler = GibbsSampler(model, beta=beta)
    chains = sampler.init_chains(gen.bernoulli(torch.full((20000, n_vis), 0.5, dtype=torch.float64)), gen)
    chains = sampler.run(chains, 30, gen)
    means, chains = sampler.snapshot(chains, 1, gen)
    freq = np.bincount(_codes(chains[0]), minlength=2**n_vis) / 20000
    assert 0.5 * np.abs(freq - exact).sum() < 0.03
    # the means returned by snapshot average to the same marginals
    marg = np.array([[((c >> (n_vis - 1 - i)) & 1) for i in range(n_vis)] for c in range(2**n_vis)]).T @ exact
    np.testing.assert_allclose(means.mean(0).numpy(), marg, atol=0.02)


def test_chains_from_older_files_and_devices():
    v = torch.ones(3, 4)
    assert chains_to(None) is None
    moved = chains_to(v, dtype=torch.float64)  # older SampleCallback states held the visible tensor alone
    assert isinstance(moved, list) and moved[1] is None and moved[0].dtype == torch.float64
    with pytest.raises(ValueError, match="steps"):
        GibbsSampler(random_rbm()).snapshot([v[:, :6], None], 0)
