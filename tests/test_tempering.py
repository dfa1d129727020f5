"""Parallel tempering: stationarity against brute force, swap bookkeeping, mixing, training and resume."""

import itertools

import numpy as np
import pytest
import torch
from conftest import random_rbm
from scipy.special import logsumexp

from natural_bm import RBM, SGD
from natural_bm.datasets import bars_and_stripes, bars_and_stripes_patterns
from natural_bm.rng import RandomSource
from natural_bm.sampling import GibbsSampler
from natural_bm.sampling.tempering import ParallelTempering, geometric_betas


def _p_beta_v(m, beta):
    V = np.array(list(itertools.product([0.0, 1.0], repeat=m.n_visible)))
    W, b, c = (t.detach().numpy() for t in (m.W, m.vbias, m.hbias))
    log_p = beta * (V @ b) + np.logaddexp(0, beta * (V @ W + c)).sum(1)
    return np.exp(log_p - logsumexp(log_p))


def _codes(v):
    return (v.long() * (2 ** torch.arange(v.shape[1] - 1, -1, -1))).sum(1).numpy()


def test_tempered_chains_sample_the_product_of_tempered_distributions():
    """After many steps with swaps, the joint (v at beta 1, v at beta 0.4) of each chain pair is the product
    of the brute-force p_1(v) and p_0.4(v): the swap keeps the tempered product invariant. Swap counts add
    up and the rates lie strictly between 0 and 1."""
    m = random_rbm(3, 2, scale=1.5, seed=4)
    pt = ParallelTempering(m, betas=[1.0, 0.7, 0.4])
    gen = RandomSource(0)
    pt.init_chains(gen.bernoulli(torch.full((40000, 3), 0.5, dtype=torch.float64)), gen)
    pt.run(60, gen)
    p1, p04 = _p_beta_v(m, 1.0), _p_beta_v(m, 0.4)
    joint = np.bincount(_codes(pt.chains[0][0]) * 8 + _codes(pt.chains[2][0]), minlength=64) / 40000
    assert 0.5 * np.abs(joint - np.outer(p1, p04).reshape(-1)).sum() < 0.03
    assert int(pt.swaps_proposed.sum()) == 60 * 40000  # one pair per step with 3 rungs (pairs alternate)
    rates = pt.swap_rates()
    assert bool(((rates > 0.05) & (rates < 0.99)).all()), rates
    # a wrong acceptance rule (always swap) breaks the invariance this test checks
    bad = ParallelTempering(m, betas=[1.0, 0.7, 0.4])
    bad._swap = lambda k, g: bad.chains.__setitem__(slice(k, k + 2), [bad.chains[k + 1], bad.chains[k]])
    bad.init_chains(gen.bernoulli(torch.full((40000, 3), 0.5, dtype=torch.float64)), gen)
    bad.run(61, gen)
    wrong = np.bincount(_codes(bad.chains[0][0]), minlength=8) / 40000
    assert 0.5 * np.abs(wrong - p1).sum() > 0.05


def test_geometric_ladder_and_bad_ladders():
    b = geometric_betas(5, 0.1)
    np.testing.assert_allclose(b.numpy(), 0.1 ** (np.arange(5) / 4))
    for bad in ([0.9, 0.5], [1.0, 1.0], [1.0, 0.0], [1.0]):
        with pytest.raises(ValueError, match="betas"):
            ParallelTempering(random_rbm(), betas=bad)


def _peaked_bars_and_stripes_rbm():
    """An RBM fitted to 3x3 bars and stripes until its modes are separated by improbable states."""
    x = bars_and_stripes(2000, 3, seed=0)
    m = RBM(9, 12, seed=0, dtype=torch.float64).compile(SGD(0.2, momentum=0.9), "exact")
    m.fit(x, batch_size=100, epochs=150, verbose=0, seed=0)
    return m


def test_tempering_mixes_between_modes_where_gibbs_stays_stuck():
    """On a sharp bars-and-stripes RBM, 20 chains started in one mode: plain Gibbs visits few of the 14
    patterns in 300 steps, the beta = 1 chains of parallel tempering visit most of them."""
    m = _peaked_bars_and_stripes_rbm()
    patterns = {tuple(p) for p in bars_and_stripes_patterns(3)[0].astype(int).tolist()}
    start = torch.from_numpy(bars_and_stripes_patterns(3)[0][[1]]).double().expand(20, 9).clone()

    def visited(chains_per_step):
        seen = set()
        for v in chains_per_step:
            seen |= {tuple(r) for r in v.long().tolist()} & patterns
        return len(seen)

    gen = RandomSource(1)
    gibbs = GibbsSampler(m)
    chains, trace = gibbs.init_chains(start.clone(), gen), []
    for _ in range(300):
        chains = gibbs.run(chains, 1, gen)
        trace.append(chains[0])
    pt = ParallelTempering(m, n_temperatures=8)
    pt.init_chains(start.clone(), gen)
    pt_trace = [pt.step(gen)[0] for _ in range(300)]
    n_gibbs, n_pt = visited(trace), visited(pt_trace)
    assert n_pt >= 12 and n_pt >= n_gibbs + 4, (n_gibbs, n_pt)


def test_pt_training_logs_swap_rates_and_resumes_bit_identically(tmp_path):
    x = bars_and_stripes(300, 3, seed=0)

    def make():
        return RBM(9, 8, seed=0).compile(SGD(0.05, momentum=0.5), "pt", n_chains=20, n_temperatures=4, k=1)

    full = make()
    hist = full.fit(x, batch_size=50, epochs=3, verbose=0, seed=1)
    assert {"swap_rate_0", "swap_rate_1", "swap_rate_2"} <= set(hist.history)
    assert all(0 <= r <= 1 for r in hist.history["swap_rate_0"])
    chains = full.trainer.model_chains()  # what reverse AIS starts from: the beta = 1 chains
    assert chains is full.trainer.algorithm_state.sampler.chains[0] and chains[0].shape == (20, 9)
    assert make().trainer.model_chains() is None and RBM(9, 3).compile(SGD(0.1), "cd").trainer.model_chains() \
        is None
    half = make()
    half.fit(x, batch_size=50, epochs=2, verbose=0, seed=1)
    half.save(tmp_path / "pt.pt")
    resumed = RBM.load(tmp_path / "pt.pt")
    resumed.fit(x, batch_size=50, epochs=3, initial_epoch=2, verbose=0, seed=1)
    for name in ("W", "vbias", "hbias"):
        assert torch.equal(getattr(full, name), getattr(resumed, name))
    # the resumed epoch logs its own swap rates (the counts at the checkpoint are saved), not the run's so far
    for k in range(3):
        assert resumed.history.history[f"swap_rate_{k}"] == [hist.history[f"swap_rate_{k}"][2]]
