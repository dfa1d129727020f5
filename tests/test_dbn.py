"""Deep belief networks against brute-force enumeration of a tiny DBN."""

import itertools

import numpy as np
import pytest
import torch
from conftest import randomize
from scipy.special import expit, logsumexp

from natural_bm import DBN
from natural_bm.datasets import bars_and_stripes
from natural_bm.estimators import dbn_log_likelihood_bound, log_partition_exact
from natural_bm.rng import RandomSource
from natural_bm.training import pretrain_dbn


def _tiny_dbn(seed=0, scale=1.0):
    d = DBN([4, 3, 3], dtype=torch.float64)
    randomize(d, scale, seed=seed)
    return d


def _states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _brute(d):
    """log p(v) of every v (directed bottom layer, top RBM over (h1, h2)) and log Q(h1 | v), by enumeration."""
    V, H1, H2 = _states(4), _states(3), _states(3)
    r0, top = d.rbms
    W0, b0, c0 = (t.detach().numpy() for t in (r0.W, r0.vbias, r0.hbias))
    W1, b1, c1 = (t.detach().numpy() for t in (top.W, top.vbias, top.hbias))
    log_top = H1 @ W1 @ H2.T + (H1 @ b1)[:, None] + (H2 @ c1)[None, :]
    log_p_h1 = logsumexp(log_top, axis=1) - logsumexp(log_top)
    p_v = expit(H1 @ W0.T + b0)  # (h1, v units)
    log_p_v_h1 = V @ np.log(p_v).T + (1 - V) @ np.log(1 - p_v).T  # [v, h1]
    log_p_v = logsumexp(log_p_v_h1 + log_p_h1[None, :], axis=1)
    q = expit(V @ W0 + c0)  # Q(h1 = 1 | v)
    log_q = H1 @ np.log(q).T + (1 - H1) @ np.log(1 - q).T  # [h1, v]
    return V, log_p_v, log_p_v_h1, log_p_h1, log_q.T, logsumexp(log_top)


def test_bound_equals_its_enumerated_value_and_lies_below_log_p():
    """The sampled bound averages to E_Q[log p(v, h1) - log Q(h1 | v)] computed by enumerating h1, which is
    below the exact log p(v) (the gap is KL(Q || p(h1 | v)) >= 0)."""
    d = _tiny_dbn()
    V, log_p_v, log_p_v_h1, log_p_h1, log_q, log_z = _brute(d)
    assert log_partition_exact(d.top) == pytest.approx(log_z, abs=1e-10)
    Q = np.exp(log_q)  # [v, h1]
    exact_bound = (Q * (log_p_v_h1 + log_p_h1[None, :] - log_q)).sum(1)
    assert np.all(exact_bound <= log_p_v + 1e-12) and np.any(log_p_v - exact_bound > 0.05)
    est = d.log_prob_bound(torch.from_numpy(V), log_z, n_samples=8000, generator=RandomSource(0)).numpy()
    np.testing.assert_allclose(est, exact_bound, atol=0.05)
    mean, se = dbn_log_likelihood_bound(d, np.repeat(V, 200, 0), log_z, n_samples=4, seed=1)
    assert abs(mean - exact_bound.mean()) < 4 * se + 0.01 and se > 0
    with pytest.raises(ValueError, match="binary"):
        dbn_log_likelihood_bound(d, V * 0.5, log_z)


def test_ancestral_samples_follow_the_dbn_distribution():
    d = _tiny_dbn(seed=1)
    V, log_p_v, *_ = _brute(d)
    d.sample(40000, n_gibbs=50, generator=RandomSource(2))
    codes = (d.last_sample.long() * torch.tensor([8, 4, 2, 1])).sum(1).numpy()
    freq = np.bincount(codes, minlength=16) / 40000
    assert 0.5 * np.abs(freq - np.exp(log_p_v)).sum() < 0.03


def test_transform_is_the_up_pass_and_greedy_training_stacks_rbms():
    x = bars_and_stripes(400, 3, seed=0)
    d = DBN([9, 8, 6], seed=0)
    pretrain_dbn(d, x, epochs=[3, 2], batch_size=50, seed=0)
    r0, r1 = d.rbms
    up = r1.prob_h_given_v(r0.prob_h_given_v(torch.from_numpy(x)))
    torch.testing.assert_close(d.transform(x), up)
    # the second RBM was trained on the first one's hidden probabilities: its visible biases moved from 0
    assert float(r1.vbias.abs().sum()) > 0 and r0.optimizer.iterations > r1.optimizer.iterations
    with pytest.raises(ValueError, match="at least 3 layers"):
        DBN([9, 8])


def test_bound_of_a_three_layer_dbn_equals_its_enumerated_value():
    """Two directed layers (784-500-500-2000 in miniature: 3-3-2-2): the sampled bound averages to
    E_Q(h1|v)Q(h2|h1)[log p(v|h1) + log p(h1|h2) + log p(h2) - log Q(h1|v) - log Q(h2|h1)], enumerated in numpy."""
    d = DBN([3, 3, 2, 2], dtype=torch.float64)
    randomize(d, 1.0, seed=4)
    (W0, b0, c0), (W1, b1, c1), (W2, b2, c2) = (
        tuple(t.detach().numpy() for t in (r.W, r.vbias, r.hbias)) for r in d.rbms)
    V, H1, H2, H3 = _states(3), _states(3), _states(2), _states(2)

    def log_bern(x, p):  # [rows of x, rows of p]
        return x @ np.log(p).T + (1 - x) @ np.log(1 - p).T

    log_top = H2 @ W2 @ H3.T + (H2 @ b2)[:, None] + (H3 @ c2)[None, :]
    log_p_h2 = logsumexp(log_top, axis=1) - logsumexp(log_top)  # [h2]
    log_p_h1_h2 = log_bern(H1, expit(H2 @ W1.T + b1))  # [h1, h2]
    log_p_v_h1 = log_bern(V, expit(H1 @ W0.T + b0))  # [v, h1]
    log_q1 = log_bern(H1, expit(V @ W0 + c0)).T  # [v, h1]
    log_q2 = log_bern(H2, expit(H1 @ W1 + c1)).T  # [h1, h2]
    integrand = (log_p_v_h1[:, :, None] + log_p_h1_h2[None] + log_p_h2[None, None]
                 - log_q1[:, :, None] - log_q2[None])  # [v, h1, h2]
    weights = np.exp(log_q1[:, :, None] + log_q2[None])
    exact_bound = (weights * integrand).sum((1, 2))
    log_z = logsumexp(log_top)
    assert log_partition_exact(d.top) == pytest.approx(log_z, abs=1e-10)
    est = d.log_prob_bound(torch.from_numpy(V), log_z, n_samples=8000, generator=RandomSource(0)).numpy()
    np.testing.assert_allclose(est, exact_bound, atol=0.05)
