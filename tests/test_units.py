"""Unit types (Gaussian visible units) against numerical integration and brute force."""

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import randomize
from scipy import integrate
from scipy.special import logsumexp

from natural_bm import DBM, RBM, SGD
from natural_bm.estimators import AIS, EngineOptions, log_likelihood, log_partition_exact
from natural_bm.models.units import Gaussian, units_from_spec

SIGMA = np.array([0.8, 1.3])


def _gb_rbm(n_hidden=3, seed=0, scale=0.6):
    m = RBM(2, n_hidden, units=[{"type": "gaussian", "sigma": SIGMA.tolist()}, "bernoulli"], dtype=torch.float64)
    randomize(m, scale, seed=seed)
    return m


def _energy(v, h, W, b, c):
    """E(v, h) of a Gaussian-Bernoulli RBM written out: sum v^2 / (2 sigma^2) - b.v - v.W.h - c.h."""
    return (v * v / (2 * SIGMA**2)).sum() - b @ v - v @ W @ h - c @ h


def _integral_2d(f):
    """The integral of f(y, x) over [-15, 15]^2 (``dblquad``'s argument order) for a separable f, as
    Gaussian units give (no v-v terms): f(y, x) = g(x) k(y), so it is the product of two 1-D quadratures
    over f(0, 0)."""
    along_x = integrate.quad(lambda x: f(0.0, x), -15, 15, epsabs=1e-13, epsrel=1e-12)[0]
    along_y = integrate.quad(lambda y: f(y, 0.0), -15, 15, epsabs=1e-13, epsrel=1e-12)[0]
    return along_x * along_y / f(0.0, 0.0)


def _np(m):
    return m.W.detach().numpy(), m.vbias.detach().numpy(), m.hbias.detach().numpy()


def test_exact_log_z_of_a_gaussian_bernoulli_rbm_equals_numerical_integration():
    m = _gb_rbm()
    W, b, c = _np(m)
    hs = [np.array(h) for h in itertools.product([0.0, 1.0], repeat=3)]
    one = lambda y, x: math.exp(-_energy(np.array([x, y]), hs[5], W, b, c))  # noqa: E731
    assert _integral_2d(one) == pytest.approx(integrate.dblquad(one, -15, 15, -15, 15, epsabs=1e-11, epsrel=1e-10)[0],
                                              rel=1e-9)
    for beta in (1.0, 0.6):
        terms = []
        for h in hs:
            val = _integral_2d(lambda y, x: math.exp(-beta * _energy(np.array([x, y]), h, W, b, c)))
            terms.append(math.log(val))
        expected = logsumexp(terms)
        assert log_partition_exact(m, beta=beta) == pytest.approx(expected, abs=1e-7)
    # a DBM with Gaussian visible units and two binary hidden layers: v integrated, h1 enumerated, h2 summed
    d = DBM([2, 3, 2], units=[{"type": "gaussian", "sigma": SIGMA.tolist()}, "bernoulli", "bernoulli"],
            dtype=torch.float64)
    randomize(d, 0.5, seed=3)
    W01, W12 = d.W_0_1.detach().numpy(), d.W_1_2.detach().numpy()
    b0, b1, b2 = (x.detach().numpy() for x in d.biases)
    terms = []
    for h1 in itertools.product([0.0, 1.0], repeat=3):
        for h2 in itertools.product([0.0, 1.0], repeat=2):
            h1_, h2_ = np.array(h1), np.array(h2)
            rest = b1 @ h1_ + b2 @ h2_ + h1_ @ W12 @ h2_

            def f(y, x, h1_=h1_, rest=rest):
                v = np.array([x, y])
                return math.exp(-(v * v / (2 * SIGMA**2)).sum() + b0 @ v + v @ W01 @ h1_ + rest)

            terms.append(math.log(_integral_2d(f)))
    assert log_partition_exact(d) == pytest.approx(logsumexp(terms), abs=1e-7)


def test_gaussian_conditionals_free_energy_and_sampling_against_brute_force():
    m = _gb_rbm()
    W, b, c = _np(m)
    v = np.array([[0.3, -1.1], [2.0, 0.4]])
    hs = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    for row, vt in zip(v, torch.from_numpy(v), strict=True):
        log_p = np.array([-_energy(row, h, W, b, c) for h in hs])
        p_h = np.exp(log_p - logsumexp(log_p)) @ hs  # p(h_j = 1 | v) by enumeration
        np.testing.assert_allclose(m.prob_h_given_v(vt[None]).numpy()[0], p_h, rtol=1e-10)
        assert float(m.free_energy(vt[None])) == pytest.approx(-logsumexp(log_p), abs=1e-10)
    h = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    # E[v_i | h] and Var by integrating the unnormalised conditional of one unit numerically
    for i in range(2):
        a = b[i] + W[i] @ h.numpy()[0]
        dens = lambda x, a=a, i=i: math.exp(-x * x / (2 * SIGMA[i] ** 2) + a * x)  # noqa: E731
        z = integrate.quad(dens, -30, 30)[0]
        mean = integrate.quad(lambda x: x * dens(x), -30, 30)[0] / z
        assert float(m.prob_v_given_h(h)[0, i]) == pytest.approx(mean, abs=1e-9)
    # draws at beta = 0.5 have mean sigma^2 a and variance sigma^2 / beta
    draws = m.sample_v(h.expand(200_000, 3), beta=0.5, generator=torch.Generator().manual_seed(0))
    a = torch.from_numpy(b + W @ h.numpy()[0])
    torch.testing.assert_close(draws.mean(0), torch.from_numpy(SIGMA**2) * a, atol=0.02, rtol=0)
    torch.testing.assert_close(draws.var(0), torch.from_numpy(SIGMA**2 / 0.5), atol=0.03, rtol=0.02)


def test_gaussian_rbm_learns_real_valued_data_with_cd():
    """CD-1 on two clusters of points (std 0.4) brings the exact log-likelihood from -3.62 at the start to
    within 0.1 nat of the best a unit-variance model can do: a half-half mixture of N(center, I),
    -(log 2 pi + 0.16 + log 2) = -2.69 nats."""
    rng = np.random.default_rng(0)
    centers = np.array([[1.5, -1.0], [-1.5, 1.0]])
    x = (centers[rng.integers(0, 2, 2000)] + 0.4 * rng.standard_normal((2000, 2))).astype(np.float64)
    m = RBM(2, 4, units=["gaussian", "bernoulli"], seed=0, dtype=torch.float64)

    def exact_ll():
        return log_likelihood(m, x, log_partition_exact(m))[0]

    before = exact_ll()
    m.compile(SGD(0.05, momentum=0.5), "cd", k=1)
    hist = m.fit(x, batch_size=50, epochs=30, verbose=0, seed=0, validation_data=x[:200])
    after = exact_ll()
    best = -(math.log(2 * math.pi) + 0.16 + math.log(2))
    assert before < best - 0.8 and after > best - 0.1, (before, after, best)
    assert "pll" not in hist.history and "val_loss" in hist.history  # no pseudo-likelihood for real values


def test_gaussian_units_accept_real_values_and_refuse_what_does_not_apply(tmp_path):
    m = _gb_rbm()
    x = np.array([[-3.0, 4.5], [0.2, -0.1]])
    assert np.isfinite(log_likelihood(m, x, log_partition_exact(m))[0])
    with pytest.raises(ValueError, match="NaN"):
        log_likelihood(m, np.array([[np.nan, 0.0]]), 1.0)
    with pytest.raises(ValueError, match="inf"):
        log_likelihood(m, np.array([[np.inf, 0.0]]), 1.0)
    with pytest.raises(ValueError, match="real-valued"):
        m.compile(SGD(0.01), "cd").fit(x, batch_size=2, epochs=1, verbose=0, binarize=True)
    with pytest.raises(ValueError, match="pseudo-likelihood"):
        m.pseudo_log_likelihood(torch.from_numpy(x))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        RBM(2, 3).compile(SGD(0.01), "cd").fit(x, batch_size=2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="sigma"):
        Gaussian(2, sigma=[1.0, -1.0])
    with pytest.raises(ValueError, match="unknown unit type"):
        units_from_spec("poisson", 3)
    # saved and loaded with its unit types and standard deviations
    m.save(tmp_path / "gb.pt")
    back = RBM.load(tmp_path / "gb.pt")
    assert isinstance(back.units[0], Gaussian)
    torch.testing.assert_close(back.units[0].sigma, m.units[0].sigma)
    assert log_partition_exact(back) == pytest.approx(log_partition_exact(m), abs=1e-12)


def test_mean_field_bound_of_a_gaussian_visible_dbm_is_below_the_exact_free_energy():
    """log_prob_bound(v) <= -F(v) (F exact: h2 enumerated, h1 summed out) for real-valued v; and the bound
    matches -F(v) of a two-layer model exactly."""
    d = DBM([2, 3, 2], units=[{"type": "gaussian", "sigma": SIGMA.tolist()}, "bernoulli", "bernoulli"],
            dtype=torch.float64)
    randomize(d, 0.8, seed=5)
    v = torch.tensor([[0.5, -1.0], [2.0, 1.5], [-0.3, 0.1]], dtype=torch.float64)
    bound, exact = d.log_prob_bound(v, max_steps=200, atol=1e-12), -d.free_energy(v)
    assert bool((bound <= exact + 1e-12).all()) and bool((exact - bound < 0.5).all()), (bound, exact)
    m = _gb_rbm()
    torch.testing.assert_close(m.log_prob_bound(v), -m.free_energy(v))


@pytest.mark.parametrize("compile", [False, True])
def test_ais_of_gaussian_visible_models_matches_exact_log_z(compile):
    """Forward and reverse AIS (Gaussian base model fitted to the data) against exact log Z: a
    Gaussian-Bernoulli RBM and a DBM with Gaussian visible units."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 6))
    m = RBM(6, 8, units=[{"type": "gaussian", "sigma": 0.9}, "bernoulli"], dtype=torch.float64)
    d = DBM([6, 5, 3], units=["gaussian", "bernoulli", "bernoulli"], dtype=torch.float64)
    for model, seed in ((m, 2), (d, 3)):
        randomize(model, 0.4, seed=seed)
        exact = log_partition_exact(model)
        ais = AIS(model, data=x, n_runs=64, n_betas=2000, seed=0, progress=False,
                  engine=EngineOptions(jit_compile=compile))
        z, lo, hi = ais.estimate_log_error_Z()
        assert abs(z - exact) < 0.05 and lo <= exact <= hi, (z, lo, hi, exact)
        rz = ais.run_reverse(data=x, n_gibbs=200)
        assert abs(rz - exact) < 0.05, (rz, exact)


def test_digits_loader_standardises_on_the_training_split():
    from natural_bm.datasets import load_digits

    d = load_digits("standardized", seed=0)
    assert (len(d.train), len(d.valid), len(d.test)) == (1197, 300, 300) and d.image_shape == (8, 8)
    std = d.train.std(0)
    np.testing.assert_allclose(d.train.mean(0), 0.0, atol=1e-5)
    assert np.allclose(std[std > 0], 1.0, atol=1e-4) and (std == 0).sum() >= 1  # the blank corner pixels
    again = load_digits("standardized", seed=0)
    np.testing.assert_array_equal(d.test, again.test)
    p = load_digits("probability", seed=0)
    assert p.train.min() >= 0 and p.train.max() <= 1
    np.testing.assert_array_equal(p.train_labels, d.train_labels)
    with pytest.raises(ValueError, match="kind"):
        load_digits("grey")


def test_a_gaussian_config_trains_and_reports_exact_and_ais_log_z(tmp_path, capsys):
    import json

    from natural_bm.cli import main

    cfg = {"model": {"type": "rbm", "n_hidden": 6, "units": ["gaussian", "bernoulli"]},
           "data": {"name": "digits", "kind": "standardized"},
           "training": {"algorithm": "pcd", "epochs": 2, "batch_size": 50},
           "optimizer": {"lr": 0.002, "momentum": 0.5},
           "ais": {"n_runs": 32, "n_betas": 1000, "exact": True, "reverse": True, "reverse_gibbs": 50},
           "samples": {"n_chains": 4, "n_samples": 2, "plot_every": 10}}
    (tmp_path / "gb.json").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "gb.json"), "--out", str(tmp_path / "run"), "--verbose", "0"]) == 0
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert abs(res["logZ"] - res["logZ_exact"]) < 0.05 and abs(res["logZ_reverse"] - res["logZ_exact"]) < 0.05
    assert res["test_ll_exact"] == pytest.approx(res["test_ll"] - (res["logZ_exact"] - res["logZ"]), abs=1e-9)
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert "loss" in header and "pll" not in header and "val_pll" not in header
    cfg["model"]["units"] = ["poisson", "bernoulli"]
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "bad.json"), "--out", str(tmp_path / "bad")]) == 2
    assert "model.units: unknown unit type 'poisson'" in capsys.readouterr().err
    cfg["model"]["units"] = ["bernoulli"]
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "bad.json"), "--out", str(tmp_path / "bad")]) == 2
    assert "model.units of an RBM lists 2 unit types" in capsys.readouterr().err


def _brute_softmax_model():
    """[3 binary pixels, 4 hidden, 3 labels (one softmax group)] with random weights, float64."""
    d = DBM([3, 4, 3], units=["bernoulli", "bernoulli", "softmax"], dtype=torch.float64)
    randomize(d, 0.9, seed=7)
    return d


def _brute_log_joint(d):
    """log p*(v, h, y) over every state (v binary, h binary, y one-hot) as an array [v, h, y]."""
    V = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    H = np.array(list(itertools.product([0.0, 1.0], repeat=4)))
    Y = np.eye(3)
    W01, W12 = d.W_0_1.detach().numpy(), d.W_1_2.detach().numpy()
    b0, b1, b2 = (x.detach().numpy() for x in d.biases)
    return ((V @ W01 @ H.T)[:, :, None] + (H @ W12 @ Y.T)[None] + (V @ b0)[:, None, None]
            + (H @ b1)[None, :, None] + (Y @ b2)[None, None, :]), V


def test_softmax_label_layer_against_brute_force():
    """Exact log Z, p(y | v) (classification), the joint's visible-label distribution under the sampler,
    digits drawn given a clamped label, and AIS: all against enumeration of (v, h, y)."""
    from natural_bm.rng import RandomSource
    from natural_bm.sampling import GibbsSampler

    d = _brute_softmax_model()
    log_joint, V = _brute_log_joint(d)
    assert log_partition_exact(d) == pytest.approx(logsumexp(log_joint), abs=1e-10)
    log_vy = logsumexp(log_joint, axis=1)  # [v, y]
    expected = log_vy - logsumexp(log_vy, axis=1, keepdims=True)
    np.testing.assert_allclose(d.predict_log_proba(torch.from_numpy(V)).numpy(), expected, atol=1e-10)
    # the sampler's (v, y) histogram: 20,000 chains after 40 sweeps
    gen = RandomSource(3)
    sampler = GibbsSampler(d)
    chains = sampler.run(sampler.init_chains(gen.bernoulli(torch.full((20000, 3), 0.5, dtype=torch.float64)),
                                             gen), 40, gen)
    assert bool((chains[2].sum(1) == 1).all())  # one label on in every chain
    code = (chains[0] @ torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).long() * 3 + chains[2].argmax(1)
    freq = np.bincount(code.numpy(), minlength=24) / 20000
    p_vy = np.exp(log_vy - logsumexp(log_vy)).reshape(-1)
    assert 0.5 * np.abs(freq - p_vy).sum() < 0.03
    # digits given a label: the label layer clamped to class 2
    y = torch.zeros(20000, 3, dtype=torch.float64)
    y[:, 2] = 1
    clamped = GibbsSampler(d, clamp={2: y})
    chains = clamped.run(clamped.init_chains(gen.bernoulli(torch.full((20000, 3), 0.5, dtype=torch.float64)),
                                             gen), 40, gen)
    assert torch.equal(chains[2], y)
    freq = np.bincount((chains[0] @ torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).long().numpy(),
                       minlength=8) / 20000
    p_v_given_y = np.exp(log_vy[:, 2] - logsumexp(log_vy[:, 2]))
    assert 0.5 * np.abs(freq - p_v_given_y).sum() < 0.03
    # AIS (h annealed; v and the labels summed out) against exact
    for compile in (False, True):
        z, lo, hi = AIS(d, n_runs=64, n_betas=1500, base="uniform", seed=1,
                        progress=False, engine=EngineOptions(jit_compile=compile)).estimate_log_error_Z()
        assert abs(z - logsumexp(log_joint)) < 0.03 and lo <= logsumexp(log_joint) <= hi


def test_softmax_units_checks():
    from natural_bm.models.units import Softmax

    with pytest.raises(ValueError, match="group_size"):
        Softmax(5, group_size=2)
    s = Softmax(6, group_size=3)
    a = torch.randn(4, 6, dtype=torch.float64)
    mu = s.mean(a)
    torch.testing.assert_close(mu.view(4, 2, 3).sum(-1), torch.ones(4, 2, dtype=torch.float64))
    x = s.sample(a, generator=torch.Generator().manual_seed(0))
    assert bool((x.view(4, 2, 3).sum(-1) == 1).all())
    brute = torch.logsumexp(a.view(4, 2, 3), -1).sum(1)
    torch.testing.assert_close(s.log_partition(a), brute)
    with pytest.raises(ValueError, match="softmax units in one group"):
        DBM([3, 4, 3]).predict_log_proba(torch.zeros(2, 3))


def _learned_sigma_rbm(n_visible=3, n_hidden=2, seed=0):
    m = RBM(n_visible, n_hidden, units=[{"type": "gaussian", "sigma": 1.0, "learn_sigma": True}, "bernoulli"],
            dtype=torch.float64)
    return randomize(m, 0.4, seed=seed)


def test_learned_sigma_statistic_is_the_energy_derivative():
    m = _learned_sigma_rbm()
    assert "log_sigma_0" in m.param_names and m.log_sigma_0 is m.units[0].log_sigma
    g = torch.Generator().manual_seed(0)
    v, h = torch.randn(7, 3, generator=g, dtype=torch.float64), (torch.rand(7, 2, generator=g) < 0.5).double()
    m.units[0].log_sigma.requires_grad_(True)
    (-m.joint_energy([v, h])).mean().backward()
    torch.testing.assert_close(m.units[0].log_sigma.grad, m.units[0].sigma_statistic(v).detach(), rtol=0, atol=1e-12)


def test_learned_sigma_gradient_equals_autograd_of_the_exact_log_likelihood():
    """<x^2 / sigma^2>_data - <x^2 / sigma^2>_model, the model's moment exact by enumerating h, against autograd
    of the closed-form log-likelihood: log Z = log sum_h exp(c.h + sum_i [sigma_i^2 a_i(h)^2 / 2 + log(sqrt(2 pi)
    sigma_i)]), a(h) = b + W h, written independently of the library."""
    m = _learned_sigma_rbm(seed=1)
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.5
    W, b, c, log_s = (t.detach().clone().requires_grad_(True) for t in (m.W, m.vbias, m.hbias, m.log_sigma_0))
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)), dtype=torch.float64)
    var = torch.exp(2 * log_s)
    a = b + hs @ W.T  # (4, 3)
    log_z = torch.logsumexp(hs @ c + (0.5 * var * a * a + 0.5 * torch.log(2 * math.pi * var)).sum(1), 0)
    free = (x * x / (2 * var)).sum(1) - x @ b - torch.nn.functional.softplus(c + x @ W).sum(1)
    (-free - log_z).mean().backward()
    with torch.no_grad():
        p_h = torch.softmax(hs @ m.hbias + (0.5 * var * a * a).sum(1), 0)
        model_x2 = p_h @ (var * a) ** 2 + var  # E[x_i^2] = E_h[mu_i(h)^2] + sigma_i^2
        expected = (x * x).mean(0) / var - model_x2 / var
    torch.testing.assert_close(log_s.grad, expected, rtol=0, atol=1e-12)
    # and the statistics the algorithms use give the same data term
    torch.testing.assert_close(m.sufficient_statistics([x, torch.zeros(9, 2, dtype=torch.float64)])["log_sigma_0"],
                               (x * x).mean(0) / var, rtol=0, atol=1e-12)


def test_learned_sigma_finds_the_data_scale_and_survives_save(tmp_path):
    """Data with standard deviations 0.5 and 2: fixed sigma = 1 cannot fit them; learned sigma moves to them
    and the exact test log-likelihood rises above the fixed-sigma model's."""
    rng = np.random.default_rng(0)
    scales = np.array([0.5, 2.0, 2.0])
    x, x_test = (rng.normal(size=(n, 3)) * scales for n in (2000, 500))
    lls = {}
    for learn in (False, True):
        m = RBM(3, 2, units=[{"type": "gaussian", "sigma": 1.0, "learn_sigma": learn}, "bernoulli"], seed=0,
                dtype=torch.float64).compile(SGD(0.01, momentum=0.5), "pcd", n_chains=100, k=5)
        m.fit(x, batch_size=100, epochs=40, verbose=0, seed=0)
        lls[learn] = float(log_likelihood(m, x_test, log_partition_exact(m))[0])
    np.testing.assert_allclose(m.units[0].sigma.numpy(), scales, rtol=0.15)
    exact_fit = float(np.mean(-0.5 * (x_test / scales) ** 2 - np.log(np.sqrt(2 * np.pi) * scales)).sum() * 3)
    assert lls[True] > lls[False] + 0.3 and lls[True] > exact_fit - 0.1
    m.save(tmp_path / "gb.pt")
    back = RBM.load(tmp_path / "gb.pt", dtype=torch.float64)
    assert back.units[0].learn_sigma and torch.equal(back.units[0].sigma, m.units[0].sigma)


def test_learned_sigma_only_for_the_visible_layer():
    with pytest.raises(ValueError, match="learned sigma is for the visible layer"):
        DBM([3, 2, 2], units=["bernoulli", {"type": "gaussian", "learn_sigma": True}, "bernoulli"])


def test_log_prob_from_mean_is_the_density_that_sample_from_mean_draws():
    from scipy.stats import norm

    from natural_bm.models.units import Bernoulli, Softmax

    rng = np.random.default_rng(0)
    b = Bernoulli(3)
    mu = torch.from_numpy(rng.uniform(0.05, 0.95, (2, 3)))
    states = b.all_states()
    lp = torch.stack([b.log_prob_from_mean(states, m.expand(8, 3)) for m in mu]).numpy()
    m = mu.numpy()
    ref = np.array([[np.sum(np.where(s == 1, np.log(r), np.log1p(-r))) for s in states.numpy()] for r in m])
    np.testing.assert_allclose(lp, ref, atol=1e-12)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, atol=1e-12)
    sm = Softmax(6, group_size=3)
    mu = sm.mean(torch.from_numpy(rng.normal(size=(1, 6))))
    states = sm.all_states()
    lp = sm.log_prob_from_mean(states, mu.expand(len(states), 6)).numpy()
    g = mu.numpy().reshape(2, 3)
    ref = [np.log(g[0, s[:3].argmax()]) + np.log(g[1, s[3:].argmax()]) for s in states.numpy()]
    np.testing.assert_allclose(lp, ref, atol=1e-12)
    gs = Gaussian(2, sigma=[0.5, 2.0]).double()
    x, mu = torch.from_numpy(rng.normal(size=(4, 2))), torch.from_numpy(rng.normal(size=(4, 2)))
    ref = norm.logpdf(x.numpy(), mu.numpy(), [0.5, 2.0]).sum(1)
    np.testing.assert_allclose(gs.log_prob_from_mean(x, mu).numpy(), ref, atol=1e-12)
    np.testing.assert_array_equal(gs.log_density_from_mean(mu)(x).numpy(), gs.log_prob_from_mean(x, mu).numpy())
    # log_density_from_mean: the same values with the logs of mu taken once, saturated means included
    mu = torch.tensor([[0.0, 1.0, 0.3], [1.0, 0.0, 0.7]], dtype=torch.float64)
    for x in b.all_states():
        x = x.expand(2, 3)
        np.testing.assert_array_equal(b.log_density_from_mean(mu)(x).numpy(), b.log_prob_from_mean(x, mu).numpy())
    mu = torch.tensor([[0.0, 0.2, 0.8, 1.0, 0.0, 0.0]], dtype=torch.float64)
    for x in sm.all_states():
        np.testing.assert_array_equal(sm.log_density_from_mean(mu)(x[None]).numpy(),
                                      sm.log_prob_from_mean(x[None], mu).numpy())
