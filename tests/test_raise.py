"""RAISE (reverse annealing from each image) against exact enumeration on small RBMs and DBMs."""

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import random_rbm, randomize

from natural_bm import DBM, RBM
from natural_bm.estimators import EngineOptions, RaiseEstimate, log_partition_exact, raise_log_likelihood


def _all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def _model_samples(m, n, seed=0):
    """``n`` exact draws of v from a small model and their exact log p(v)."""
    V = _all_states(m.n_visible)
    log_p = -m.free_energy(V) - log_partition_exact(m, progress=False)
    idx = torch.multinomial(torch.exp(log_p), n, replacement=True, generator=torch.Generator().manual_seed(seed))
    return V[idx], log_p[idx]


def test_one_beta_weights_average_to_the_one_sweep_surrogate():
    """With betas [0, 1] RAISE's surrogate model is: v' from the base, one Gibbs sweep at beta = 1, emit v. Its
    weights' mean is that model's p_fwd(v) = sum_v' p_0(v') T(v | v') (enumerated), not p(v): the estimator
    is unbiased for the surrogate, as Burda et al. state."""
    m = random_rbm(4, 3, scale=1.5, seed=2)
    V, H = _all_states(4), _all_states(3)
    W, b, c = m.W.detach(), m.vbias.detach(), m.hbias.detach()
    p_h_given_v = torch.exp(H @ (V @ W + c).T - torch.nn.functional.softplus(V @ W + c).sum(1))  # (h, v)
    p_v_given_h = torch.exp(V @ (H @ W.T + b).T - torch.nn.functional.softplus(H @ W.T + b).sum(1))  # (v, h)
    T = p_v_given_h @ p_h_given_v  # T[v, v'] = p(v | v') after one sweep from v'
    p_fwd = T @ torch.full((16,), 1 / 16, dtype=torch.float64)  # the uniform base's visible marginal
    r = raise_log_likelihood(m, V, n_chains=40000, betas=[0.0, 1.0], base="uniform", seed=0)
    w_mean = torch.exp(r.log_w).mean(1)
    se = torch.exp(r.log_w).std(1) / math.sqrt(40000)
    assert bool(((w_mean - p_fwd).abs() < 4 * se).all()), (w_mean, p_fwd)
    p = torch.exp(-m.free_energy(V) - log_partition_exact(m, progress=False))
    assert float((p_fwd - p).abs().max()) > 10 * float(se.max())  # the surrogate is not the model here


@pytest.mark.filterwarnings("ignore:RAISE:RuntimeWarning")
@pytest.mark.parametrize("parity", [0, 1])
def test_few_betas_err_low_on_the_models_own_samples(parity):
    """Averaged over 5 seeds and 200 images drawn from an 8x5 RBM, RAISE with 3 or 10 betas lies below the
    exact log p(v) by many standard errors (measured: -0.18 and -0.05 nats annealing v, -0.81 and -0.30
    annealing h): conservative, never above exact beyond the noise."""
    m = random_rbm(8, 5, scale=1.0, seed=3)
    v, exact = _model_samples(m, 200)
    for n_betas in (3, 10):
        est = torch.stack([raise_log_likelihood(m, v, n_chains=5, n_betas=n_betas, base="uniform", seed=s,
                                                parity=parity).log_prob for s in range(5)]).mean(0)
        diff = est - exact
        se = float(diff.std()) / math.sqrt(len(diff))
        assert float(diff.mean()) < -3 * se, (n_betas, float(diff.mean()), se)


@pytest.mark.parametrize("kind,parity", [("rbm", 0), ("rbm", 1), ("dbm", 0), ("dbm", 1)])
def test_enough_betas_come_within_0_1_nats_of_exact(kind, parity):
    """1000 betas, 50 chains: every image's estimate within 0.1 nats of exact (measured: at most 0.035 and
    0.058 nats on the RBM annealing v and h, 0.079 and 0.068 on the 8-5-4 DBM annealing v, h2 and h1), on
    random binary images."""
    if kind == "rbm":
        m = random_rbm(8, 5, scale=1.0, seed=3)
    else:
        m = randomize(DBM([8, 5, 4], seed=0, dtype=torch.float64), 0.8, seed=2)
    v = (torch.rand(20, 8, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    exact = -m.free_energy(v) - log_partition_exact(m, progress=False)
    r = raise_log_likelihood(m, v, n_chains=50, n_betas=1000, base="uniform", seed=1, parity=parity)
    assert isinstance(r, RaiseEstimate) and r.log_prob.shape == (20,) and r.log_w.shape == (20, 50)
    assert float((r.log_prob - exact).abs().max()) < 0.1
    assert bool((r.ess > 25).all())
    assert r.mean == pytest.approx(float(r.log_prob.mean())) and r.stderr > 0


def test_gaussian_visible_units_and_the_data_base():
    """A Gaussian-Bernoulli RBM (densities of real v): RAISE on either side within 0.1 nats of the exact
    log density; the data base model (base-rate means) works as AIS's."""
    m = RBM(5, 4, seed=0, dtype=torch.float64, units=[{"type": "gaussian", "sigma": 0.7}, "bernoulli"])
    randomize(m, 0.5, seed=1)
    v = torch.randn(10, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = -m.free_energy(v) - log_partition_exact(m, progress=False)
    for parity in (0, 1):
        r = raise_log_likelihood(m, v, n_chains=50, n_betas=1000, base="data", data=v, seed=0, parity=parity)
        assert float((r.log_prob - exact).abs().max()) < 0.1, parity


def test_reproducible_from_its_seed_and_warns_with_few_effective_chains():
    m = random_rbm(8, 5, scale=1.0, seed=3)
    v = (torch.rand(6, 8, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    a = raise_log_likelihood(m, v, n_chains=8, n_betas=50, base="uniform", seed=4)
    b = raise_log_likelihood(m, v, n_chains=8, n_betas=50, base="uniform", seed=4)
    c = raise_log_likelihood(m, v, n_chains=8, n_betas=50, base="uniform", seed=5)
    assert torch.equal(a.log_w, b.log_w) and not torch.equal(a.log_w, c.log_w)
    strong = random_rbm(8, 5, scale=4.0, seed=1)
    with pytest.warns(RuntimeWarning, match="effective chains"):
        r = raise_log_likelihood(strong, v, n_chains=20, betas=[0.0, 1.0], base="uniform", seed=0)
    assert float(r.ess.min()) < 10


@pytest.mark.slow
def test_compiled_steps_agree_with_exact():
    """The compiled steps (counter-based random numbers) estimate the same values."""
    m = random_rbm(8, 5, scale=1.0, seed=3)
    v = (torch.rand(10, 8, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    exact = -m.free_energy(v) - log_partition_exact(m, progress=False)
    r = raise_log_likelihood(m, v, n_chains=50, n_betas=1000, base="uniform", seed=1,
                             engine=EngineOptions(jit_compile=True))
    assert float((r.log_prob - exact).abs().max()) < 0.1


def test_bad_input_names_the_argument():
    m = random_rbm(8, 5)
    v = np.zeros((3, 8), dtype=np.float32)
    for kw, name in [({"n_chains": 0}, "n_chains"), ({"betas": [0.0, 0.7, 0.5, 1.0]}, "betas"),
                     ({"base": "flat"}, "base"), ({"parity": 2}, "parity"), ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(ValueError, match=name):
            raise_log_likelihood(m, v, **kw)
    with pytest.raises(ValueError, match="v"):
        raise_log_likelihood(m, np.zeros((3, 7)))
    with pytest.raises(ValueError, match="binary"):
        raise_log_likelihood(m, np.full((3, 8), 0.5))
    with pytest.raises(ValueError, match="input factors"):
        raise_log_likelihood(RBM(8, 5, up_factor=2.0), v)
    with pytest.raises(TypeError, match="engine"):
        raise_log_likelihood(m, v, engine={"jit_compile": False})
