"""The self-tuning tempering ladder: placement from swap rates (analytic cases), target rates on a sharp
RBM, mixing against the fixed geometric ladder, stationarity, resume and bad input."""

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import random_rbm
from scipy.special import logsumexp

from natural_bm import RBM, SGD
from natural_bm.datasets import bars_and_stripes, bars_and_stripes_patterns
from natural_bm.rng import RandomSource
from natural_bm.sampling import ParallelTempering, geometric_betas
from natural_bm.sampling.ladder import gap_lengths, gaps_for, place_ladder


def _rates_for(betas, c):
    """Swap rates of a system whose energy at beta has standard deviation c / beta (constant heat capacity):
    erfc(s / 2) with s = c log(beta_a / beta_b), the exact Gaussian-energy rate."""
    b = torch.as_tensor(betas, dtype=torch.float64)
    return torch.special.erfc(c * torch.log(b[:-1] / b[1:]) / 2)


def test_placement_of_a_constant_heat_capacity_system_is_geometric_with_the_target_rate():
    """Lengths are additive: measured on any ladder, the placement of a system whose length grows uniformly in
    log beta is geometric, every gap but the last at exactly the target rate, ending at min_beta."""
    c, target = 2.5, 0.25  # every starting rate above RATE_FLOOR, so no length is clamped
    d_star = float(gap_lengths(torch.tensor([target]))[0])
    ratio = math.exp(-d_star / c)  # beta_{k+1} / beta_k of the target rate
    for start in (geometric_betas(5, 0.05), torch.tensor([1.0, 0.9, 0.5, 0.3, 0.05], dtype=torch.float64)):
        new = place_ladder(start, _rates_for(start, c), target, min_beta=0.05)
        n = math.ceil(c * math.log(1 / 0.05) / d_star)
        assert len(new) == n + 1 and float(new[0]) == 1.0 and float(new[-1]) == 0.05
        np.testing.assert_allclose(new[:-1].numpy(), ratio ** np.arange(n), rtol=1e-10)
        rates = _rates_for(new, c)
        np.testing.assert_allclose(rates[:-1].numpy(), target, rtol=1e-9)
        assert float(rates[-1]) >= target
    # fixed ends: as many equal gaps as bring the rate closest to the target
    new = place_ladder(start, _rates_for(start, c), target)
    assert float(new[-1]) == 0.05 and len(new) - 1 == gaps_for(c * math.log(20), target)
    np.testing.assert_allclose(_rates_for(new, c).numpy(), float(_rates_for(new, c)[0]), rtol=1e-9)


def test_a_stalled_pair_gets_rungs_inside_it():
    betas = torch.tensor([1.0, 0.5, 0.25, 0.1], dtype=torch.float64)
    rates = torch.tensor([0.25, 0.001, 0.25])
    new = place_ladder(betas, rates, 0.25, min_beta=0.1)
    inside = ((new < 0.5) & (new > 0.25)).sum()
    assert int(inside) >= 2 and bool((new[(new >= 0.5)] == torch.tensor([1.0, 0.5], dtype=torch.float64)).all())
    assert len(place_ladder(betas, rates, 0.25, max_temperatures=5, min_beta=0.1)) == 5


def test_placement_rejects_bad_input():
    b = geometric_betas(4)
    for args, kw, name in [((b, torch.ones(2)), {}, "rates"), ((torch.tensor([0.9, 0.5]), torch.ones(1)), {}, "betas"),
                           ((b, torch.ones(3), 1.5), {}, "target"), ((b, torch.ones(3)), {"max_temperatures": 1},
                                                                    "max_temperatures"),
                           ((b, torch.ones(3)), {"min_beta": 0.0}, "min_beta")]:
        with pytest.raises(ValueError, match=name):
            place_ladder(*args, **kw)


@pytest.fixture(scope="module")
def sharp_rbm():
    """The sharp bars-and-stripes RBM of tests/test_tempering.py (3x3, 12 hidden, exact gradient)."""
    x = bars_and_stripes(2000, 3, seed=0)
    m = RBM(9, 12, seed=0, dtype=torch.float64).compile(SGD(0.2, momentum=0.9), "exact")
    m.fit(x, batch_size=100, epochs=150, verbose=0, seed=0)
    return m


def _one_mode(n):
    return torch.from_numpy(bars_and_stripes_patterns(3)[0][[1]]).double().expand(n, 9).clone()


def test_tuned_ladder_swaps_in_the_target_band(sharp_rbm):
    """Tuned from the geometric 8-rung ladder, every pair but the hottest swaps at 0.2 to 0.3 over a fresh
    2,000 steps (measured: 0.24 to 0.29), the hottest at least 0.2; the fixed ladder's pairs swap at 0.47 to
    0.81 (more rungs than needed)."""
    gen = RandomSource(0)
    pt = ParallelTempering(sharp_rbm, n_temperatures=8, adaptive=True)
    pt.init_chains(_one_mode(100), gen)
    pt.tune(200, 10, gen)
    assert pt.ladder_changes >= 1 and pt.n_temperatures < 8 and float(pt.betas[-1]) == pytest.approx(0.1)
    pt.adaptive = False
    pt.swaps_proposed.zero_()
    pt.swaps_accepted.zero_()
    pt.run(2000, gen)
    rates = pt.swap_rates()
    assert bool(((rates[:-1] >= 0.2) & (rates[:-1] <= 0.3)).all()) and float(rates[-1]) >= 0.2, rates


def test_tuned_ladder_visits_every_pattern_in_fewer_sweeps_than_the_fixed_one(sharp_rbm):
    """20 chains started in one mode; sweeps (steps x rungs) until the beta = 1 chains have visited all 14
    patterns, mean over 10 seeds: the tuned ladder (4 rungs) needs fewer than the fixed geometric one (8 rungs,
    1 to 0.1; measured: 144 against 227). The tuning's own sweeps are not counted."""
    patterns = {tuple(p) for p in bars_and_stripes_patterns(3)[0].astype(int).tolist()}

    def sweeps_until_all(pt, gen):
        seen = set()
        for t in range(1, 3001):
            seen |= {tuple(r) for r in pt.step(gen)[0].long().tolist()} & patterns
            if len(seen) == len(patterns):
                return t * pt.n_temperatures
        return math.inf

    fixed, tuned = [], []
    for seed in range(10):
        gen = RandomSource(seed)
        pt = ParallelTempering(sharp_rbm, n_temperatures=8)
        pt.init_chains(_one_mode(20), gen)
        fixed.append(sweeps_until_all(pt, gen))
        gen = RandomSource(100 + seed)
        pa = ParallelTempering(sharp_rbm, n_temperatures=8, adaptive=True)
        pa.init_chains(_one_mode(20), gen)
        pa.tune(200, 10, gen)
        pa.adaptive = False
        pa.init_chains(_one_mode(20), gen)
        tuned.append(sweeps_until_all(pa, gen))
    assert np.mean(tuned) < np.mean(fixed), (tuned, fixed)


def test_adapted_chains_sample_the_model():
    """After the ladder settles, the beta = 1 chains of a 3x2 RBM are distributed as the enumerated p(v)."""
    m = random_rbm(3, 2, scale=1.5, seed=4)
    V = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    W, b, c = (t.detach().numpy() for t in (m.W, m.vbias, m.hbias))
    log_p = V @ b + np.logaddexp(0, V @ W + c).sum(1)
    p = np.exp(log_p - logsumexp(log_p))
    gen = RandomSource(0)
    pt = ParallelTempering(m, n_temperatures=6, min_beta=0.2, adaptive=True, adapt_every=20)
    pt.init_chains(gen.bernoulli(torch.full((20000, 3), 0.5, dtype=torch.float64)), gen)
    pt.tune(40, 5, gen)
    pt.adaptive = False
    v = pt.run(60, gen)[0].long()
    freq = np.bincount((v * torch.tensor([4, 2, 1])).sum(1).numpy(), minlength=8) / 20000
    assert 0.5 * np.abs(freq - p).sum() < 0.03


def test_adaptive_sampler_resumes_bit_identically():
    """300 steps with the ladder adapting every 50, against 150, state_dict, a new adaptive sampler and 150
    more: same ladder, chains and counts. A fixed sampler refuses the adapted ladder."""
    m = random_rbm(8, 6, scale=1.0, seed=1)
    v = (torch.rand(30, 8, generator=torch.Generator().manual_seed(0)) < 0.5).double()

    def sampler():
        return ParallelTempering(m, n_temperatures=12, min_beta=0.05, adaptive=True, adapt_every=50)

    gen = RandomSource(3)
    full = sampler()
    full.init_chains(v, gen)
    full.run(300, gen)
    gen = RandomSource(3)
    half = sampler()
    half.init_chains(v, gen)
    half.run(150, gen)
    resumed = sampler()
    resumed.load_state_dict(half.state_dict())
    resumed.run(150, gen)
    assert full.ladder_changes >= 1
    assert torch.equal(full.betas, resumed.betas) and torch.equal(full.swaps_accepted, resumed.swaps_accepted)
    for a, b in zip(full.chains, resumed.chains, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="adaptive=True"):
        ParallelTempering(m, n_temperatures=12, min_beta=0.05).load_state_dict(full.state_dict())


def test_bad_arguments_name_the_argument():
    m = random_rbm()
    for kw, name in [({"adapt_every": 0}, "adapt_every"), ({"band": (0.3, 0.2)}, "band"), ({"target": 0.5}, "target"),
                     ({"band": "wide"}, "band"), ({"max_temperatures": 1}, "max_temperatures")]:
        with pytest.raises(ValueError, match=name):
            ParallelTempering(m, adaptive=True, **kw)
    with pytest.raises(RuntimeError, match="init_chains"):
        ParallelTempering(m, adaptive=True).tune()
