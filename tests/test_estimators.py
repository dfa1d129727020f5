"""Exact log Z, AIS (forward, reverse, band) and log-likelihoods against exact values."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import random_rbm
from reference import free_energy, log_z, params

from natural_bm import RBM, SGD
from natural_bm.callbacks import AISCallback, CSVLogger
from natural_bm.estimators import (
    AIS,
    EngineOptions,
    default_betas,
    effective_sample_size,
    log_likelihood,
    log_mean_exp_band,
    log_partition_exact,
)


@pytest.mark.parametrize("nv,nh,beta,chunk", [(7, 5, 1.0, 4), (5, 8, 1.0, 8), (6, 6, 0.4, 1000), (9, 4, 2.0, 3)])
def test_exact_log_z_equals_brute_force(nv, nh, beta, chunk):
    m = random_rbm(nv, nh, scale=1.3, seed=nv * nh)
    assert log_partition_exact(m, beta=beta, chunk_size=chunk) == pytest.approx(log_z(*params(m), beta), abs=1e-9)


def test_exact_log_z_compiled_path_equals_brute_force():
    m = random_rbm(8, 17, scale=0.5, seed=1)  # 2^8 visible states enumerated, compiled chunks
    ref = log_z(*params(m))
    assert log_partition_exact(m, compile=True, chunk_size=64) == pytest.approx(ref, abs=1e-9)


def test_exact_refuses_more_than_2_to_32_states():
    with pytest.raises(ValueError, match="AIS"):
        log_partition_exact(RBM(40, 33))


def test_log_likelihood_mean_and_standard_error():
    m = random_rbm(6, 4, seed=2)
    W, b, c = params(m)
    x = (np.random.default_rng(0).random((50, 6)) < 0.5).astype(np.float64)
    lz = log_z(W, b, c)
    ll = -free_energy(W, b, c, x) - lz
    mean, se = log_likelihood(m, x, lz)
    assert mean == pytest.approx(ll.mean(), abs=1e-10)
    assert se == pytest.approx(ll.std(ddof=1) / math.sqrt(50), abs=1e-10)
    # probabilities of all states sum to one
    from reference import all_states

    V = all_states(6)
    assert np.exp(-free_energy(W, b, c, V) - log_partition_exact(m)).sum() == pytest.approx(1.0, abs=1e-12)


def test_default_schedule_is_salakhutdinov_murray():
    b = default_betas()
    assert len(b) == 14501 and b[0] == 0 and b[-1] == 1 and bool((b[1:] > b[:-1]).all())
    d = torch.diff(b)
    np.testing.assert_allclose(d[b[:-1] < 0.5 - 1e-12].numpy(), 1e-3, rtol=1e-9)
    np.testing.assert_allclose(d[(b[:-1] >= 0.5) & (b[:-1] < 0.9 - 1e-12)].numpy(), 1e-4, rtol=1e-6)
    np.testing.assert_allclose(d[b[:-1] >= 0.9].numpy(), 1e-5, rtol=1e-5)
    small = default_betas(1000)
    assert len(small) == 1000 and small[0] == 0 and small[-1] == 1


def test_band_uses_standard_error_of_the_weights():
    rng = np.random.default_rng(0)
    lw = rng.normal(5.0, 1.0, 200)
    w = np.exp(lw)
    se = w.std(ddof=1) / np.sqrt(200)
    mean, lo, hi = log_mean_exp_band(torch.from_numpy(lw))
    assert mean == pytest.approx(np.log(w.mean()))
    assert lo == pytest.approx(np.log(w.mean() - 3 * se)) and hi == pytest.approx(np.log(w.mean() + 3 * se))
    assert log_mean_exp_band(torch.tensor([0.0, 50.0]))[1] == -math.inf


def _mnist_rbm(mnist_dir, nh=15):
    from natural_bm.datasets import load_mnist

    d = load_mnist("sampled", path=mnist_dir, n_train=10000, n_valid=0, download=False)
    m = RBM(784, nh, seed=0).init_from_data(d.train).compile(SGD(0.05, momentum=0.5), "cd")
    m.fit(d.train, batch_size=100, epochs=3, verbose=0, seed=0)
    return m, d.train


def _check_ais(m, data, tol=0.1):
    exact = log_partition_exact(m, progress=False)
    ais = AIS(m, data=data, n_runs=100, seed=0, progress=False)
    mean, lo, hi = ais.estimate_log_error_Z()
    rev = ais.run_reverse(data=data, n_gibbs=1000)
    rev_mean, rev_lo, rev_hi = ais.estimate_log_error_Z_reverse()
    assert abs(mean - exact) < tol, (mean, exact)
    assert lo <= exact <= hi, (lo, exact, hi)
    # reverse AIS errs high, forward low: not below forward by more than the noise, and they bracket exact
    assert rev >= mean - (hi - lo), (rev, mean)
    assert min(lo, rev_lo) <= exact <= max(hi, rev_hi)
    assert abs(rev - exact) < tol
    return mean - exact, rev - exact


# weak and strong weights (0.05 added 27 s); the weak case is slow-marked: test_eager_and_compiled_ais_agree_with_exact
# checks forward AIS of a weak-weight 784 x 10 RBM against exact, and the strong case checks both directions
@pytest.mark.parametrize("nh,scale", [pytest.param(10, 0.01, marks=pytest.mark.slow), (20, 0.1)])
def test_ais_matches_exact_log_z_random_weights(nh, scale):
    m = random_rbm(784, nh, scale=scale, seed=nh, dtype=torch.float32)
    with torch.no_grad():
        m.vbias.mul_(0.5)
    data = (np.random.default_rng(0).random((500, 784)) < torch.sigmoid(m.vbias).numpy()).astype(np.float32)
    _check_ais(m, data)


# slow (42 s on the project machine, most of it training): test_ais_matches_exact_log_z_random_weights[20-0.1]
# checks the same forward and reverse AIS against exact log Z on a 784 x 20 RBM with strong weights
@pytest.mark.slow
@pytest.mark.mnist
def test_ais_matches_exact_log_z_after_mnist_training(mnist_dir):
    m, data = _mnist_rbm(mnist_dir)
    _check_ais(m, data)


# slow (31 s with torch's compile cache empty): compiled forward and reverse AIS against exact log Z is
# test_ais_matches_exact_log_z_random_weights[20-0.1]'s (a 784 x 20 RBM, compiled by compile="auto"), eager
# AIS against exact the small models' tests (test_dbm, test_units, test_onednn's eager case)
@pytest.mark.slow
def test_eager_and_compiled_ais_agree_with_exact():
    m = random_rbm(784, 10, scale=0.05, seed=4, dtype=torch.float32)
    exact = log_partition_exact(m, progress=False)
    eager = AIS(m, n_runs=100, n_betas=3000, base="uniform", seed=1, progress=False,
                engine=EngineOptions(jit_compile=False))
    compiled = AIS(m, n_runs=100, n_betas=3000, base="uniform", seed=1, progress=False,
                   engine=EngineOptions(jit_compile=True))
    for a in (eager, compiled):
        z, lo, hi = a.estimate_log_error_Z()
        assert abs(z - exact) < 0.1 and lo <= exact <= hi
    # same seed, same path: reproducible
    again = AIS(m, n_runs=100, n_betas=3000, base="uniform", seed=1, progress=False,
                engine=EngineOptions(jit_compile=True))
    assert again.run_logZ() == compiled.logZ


def test_effective_sample_size_of_known_weights():
    assert effective_sample_size(torch.full((40,), -3.0)) == pytest.approx(40.0)
    w = np.array([1.0, 1.0, 2.0, 0.5, 1e-3])
    assert effective_sample_size(torch.tensor(np.log(w))) == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)
    assert effective_sample_size(torch.tensor([0.0, -800.0, -900.0])) == pytest.approx(1.0)  # no underflow
    assert effective_sample_size(torch.tensor([0.0, -math.inf])) == pytest.approx(1.0)  # a zero weight
    for bad, match in ((torch.zeros(0), "non-empty 1-D"), (torch.zeros(2, 3), "non-empty 1-D"),
                       (torch.tensor([0.0, math.nan]), "NaN"), (torch.tensor([0.0, math.inf]), "NaN or \\+inf")):
        with pytest.raises(ValueError, match=match):
            effective_sample_size(bad)


def test_ais_warns_when_a_few_runs_carry_the_estimate():
    """A 2-beta schedule on a model far from the base: the weights' band reaches zero, and AIS says so."""
    m = random_rbm(30, 8, scale=2.0, seed=3, dtype=torch.float32)
    bad = AIS(m, n_runs=100, n_betas=2, base="uniform", seed=0, progress=False)
    with pytest.warns(RuntimeWarning, match=r"forward AIS: \d+\.\d effective runs of 100"):
        z, lo, hi = bad.estimate_log_error_Z()
    assert bad.ess < 10 and lo == -math.inf
    with pytest.warns(RuntimeWarning, match="reverse AIS: .* too high"):
        bad.run_reverse(n_gibbs=10)
    good = AIS(random_rbm(30, 8, scale=0.05, seed=3, dtype=torch.float32), n_runs=100, n_betas=500,
               base="uniform", seed=0, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        good.run_logZ()
    assert not [w for w in caught if "effective runs" in str(w.message)]  # no warning for a well-annealed model
    assert good.ess > 90


def test_ais_rejects_bad_schedules():
    m = random_rbm(6, 3, dtype=torch.float32)
    with pytest.raises(ValueError, match="betas"):
        AIS(m, betas=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ValueError, match="base"):
        AIS(m, base="bogus")
    with pytest.warns(RuntimeWarning, match="uniform"):
        AIS(m, base="data")


def test_bracket_reports_log_likelihoods():
    m = random_rbm(784, 10, scale=0.05, seed=5, dtype=torch.float32)
    x = (np.random.default_rng(1).random((200, 784)) < 0.3).astype(np.float32)
    ais = AIS(m, data=x, n_runs=50, n_betas=2000, seed=0, progress=False)
    out = ais.estimate_bracket(x, data=x, n_gibbs=200)
    mean_ll, se = log_likelihood(m, x, out["logZ_forward"])
    assert out["ll_forward"] == pytest.approx(mean_ll) and out["ll_stderr"] == pytest.approx(se)
    assert out["ll_reverse"] == pytest.approx(mean_ll - out["gap"])
    assert out["gap"] == pytest.approx(out["logZ_reverse"] - out["logZ_forward"])
    assert out["ess_forward"] == pytest.approx(effective_sample_size(ais.log_w))
    assert out["ess_reverse"] == pytest.approx(effective_sample_size(ais.log_w_reverse))


def test_ais_callback_logs_and_nan_epochs(tmp_path):
    x = (np.random.default_rng(0).random((300, 12)) < 0.3).astype(np.float32)
    m = RBM(12, 6, seed=0).compile(SGD(0.1), "cd")
    cb = AISCallback(m, n_runs=50, n_betas=500, epoch_ls=[1], exact=True, compile=False)
    hist = m.fit(x, batch_size=50, epochs=3, validation_data=x[:100],
                 callbacks=[CSVLogger(tmp_path / "log.csv"), cb], verbose=0, seed=0)
    df = pd.read_csv(tmp_path / "log.csv")
    for key in ("logZ", "logZ_lo", "logZ_hi", "ais_ess", "train_ll", "val_ll", "logZ_exact", "train_ll_exact",
                "val_ll_exact"):
        assert key in df.columns
        assert df[key].isna().tolist() == [True, False, True]
        np.testing.assert_allclose(df[key].to_numpy(), hist.history[key], equal_nan=True)
    r = cb.results[1]
    assert r["logZ_lo"] <= r["logZ"] <= r["logZ_hi"]
    assert 1.0 <= r["ais_ess"] <= 50.0
    assert abs(r["logZ"] - r["logZ_exact"]) < 0.05
    assert r["train_ll_exact"] - r["train_ll"] == pytest.approx(r["logZ"] - r["logZ_exact"], abs=1e-9)


def test_compiled_ais_chunks_and_tail_follow_the_counter_stream():
    """Compiled calls of steps_per_call steps plus an eager tail equal a step-by-step loop on the same counters."""
    from natural_bm.estimators import EngineOptions, ais_engine, ais_steps
    from natural_bm.rng import gibbs_uniforms, stream_key

    m = random_rbm(12, 7, scale=0.5, seed=11)  # float64
    per = ais_engine.PAIR.steps_per_call
    betas = default_betas(per * 3 + 6)  # 3 compiled calls and a 5-step eager tail
    calls = ais_engine.PAIR.steps.compiled_calls
    a = AIS(m, n_runs=9, betas=betas, base="uniform", seed=4, progress=False, engine=EngineOptions(jit_compile=True))
    a.run_logZ()
    assert ais_engine.PAIR.steps.compiled_calls == calls + 3 and not ais_engine.PAIR.steps.failed
    # the same run, one eager step at a time, from the same starting states (stream 0 of the seed)
    v = a._source(0).bernoulli(torch.sigmoid(a.base_vbias).expand(9, 12).contiguous())
    log_w = torch.zeros(9, dtype=torch.float64)
    M = 12
    idx = torch.arange(9 * M).view(9, M)
    key = torch.tensor(stream_key(4, 1))
    W, c, b = m.W.detach(), m.hbias.detach(), m.vbias.detach()
    consts = (lambda bias, x: bias + x @ W, lambda bias, x: bias + x @ W.T, c, a.base_vbias, b, b - a.base_vbias,
              None, None)
    for k in range(1, len(betas)):
        u_h, u_v = gibbs_uniforms(idx + k * 9 * M, key, 12, 7, m.dtype)
        (v,), log_w = ais_steps.pair_step((v,), log_w, consts, betas[k], betas[k - 1], u_h, u_v,
                                          ("bernoulli", "bernoulli"))
    np.testing.assert_allclose(a.log_w.numpy(), log_w.numpy(), rtol=1e-10, atol=1e-10)


def test_ais_step_increment_is_the_difference_of_tempered_log_probabilities():
    """pair_step's log-weight increment equals log p*_new(v) - log p*_old(v) written out in float64."""
    from natural_bm.estimators import ais_steps

    m = random_rbm(8, 5, scale=0.7, seed=2)
    b_A = torch.linspace(-1, 1, 8, dtype=torch.float64)
    v = (torch.rand(6, 8, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    W, c, b = m.W.detach(), m.hbias.detach(), m.vbias.detach()

    def log_p(beta):
        return ((1 - beta) * b_A + beta * b) @ v.T + torch.nn.functional.softplus(beta * (v @ W + c)).sum(1)

    b_old, b_new = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.31, dtype=torch.float64)
    u = torch.full((6, 5), 0.5, dtype=torch.float64), torch.full((6, 8), 0.5, dtype=torch.float64)
    consts = (lambda bias, x: bias + x @ W, lambda bias, x: bias + x @ W.T, c, b_A, b, b - b_A, None, None)
    _, inc = ais_steps.pair_step((v,), torch.zeros(6, dtype=torch.float64), consts, b_new, b_old, *u,
                                 ("bernoulli", "bernoulli"))
    torch.testing.assert_close(inc, log_p(0.31) - log_p(0.3), rtol=1e-9, atol=1e-12)


def test_describe_bracket_says_when_forward_and_reverse_cross():
    from natural_bm.estimators.ais import describe_bracket

    assert describe_bracket(10.0, 10.5) == "bracket: log Z in [10.0000, 10.5000] (width 0.5000 nats)"
    agree = describe_bracket(10.0, 9.98, (9.9, 10.1))  # crossing inside forward AIS's band: agreement
    assert agree.startswith("agreement within error: reverse AIS is 0.0200 nats below forward AIS, inside")
    assert describe_bracket(10.0, 9.25, (9.9, 10.1)).startswith("no bracket")
    unbounded = describe_bracket(10.0, 9.0, (-math.inf, 10.5))  # a band reaching -inf holds any crossing
    assert unbounded.startswith("no bracket") and "-inf" in unbounded
    text = describe_bracket(10.0, 9.25)
    assert text.startswith("no bracket: reverse AIS is 0.7500 nats below forward AIS (they cross)")


def test_ais_compiles_only_where_it_pays_back():
    from natural_bm.compiling import COMPILE_WORK_THRESHOLD

    small = random_rbm(9, 8, seed=0)
    assert AIS(small, n_runs=100, base="uniform", progress=False).jit_compile is False  # 14,501 x 100 x 144
    big = random_rbm(784, 20, scale=0.01, seed=0)
    assert AIS(big, n_runs=100, base="uniform", progress=False).jit_compile is True  # 14,501 x 100 x 31,360
    assert 14501 * 100 * 144 < COMPILE_WORK_THRESHOLD < 14501 * 100 * 31360
    assert AIS(small, n_runs=100, base="uniform", progress=False,
               engine=EngineOptions(jit_compile=True)).jit_compile is True
    with pytest.raises(ValueError, match="'auto'"):
        AIS(small, engine=EngineOptions(jit_compile="yes"))
    with pytest.raises(TypeError, match="unexpected keyword"):
        AIS(small, compile=True)  # an engine option, not a statistical one


def test_log_likelihood_of_grey_levels_warns():
    m = random_rbm(6, 3, seed=0)
    z = log_partition_exact(m)
    with pytest.warns(RuntimeWarning, match="grey-level data"):
        log_likelihood(m, np.full((4, 6), 0.5), z)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_likelihood(m, np.eye(6)[:4], z)  # binary: no warning


@pytest.mark.parametrize("scale,bias,beta", [(0.1, 1.0, 1.0), (1.0, 2.0, 1.0), (0.3, 1.0, 0.4), (0.05, 650.0, 1.0)])
def test_product_method_of_exact_log_z_equals_the_softplus_sum(scale, bias, beta):
    """Tables of exp(a) and group products against the direct sum of softplus terms: 784 x 14 models with
    small and large inputs (group sizes 64 down to a few), a tempered one, and inputs so large that the
    method falls back to the softplus sum."""
    g = torch.Generator().manual_seed(1)
    m = RBM(784, 14, dtype=torch.float64)
    with torch.no_grad():
        m.W.copy_(scale * torch.randn(784, 14, generator=g, dtype=torch.float64))
        m.vbias.copy_(bias * torch.randn(784, generator=g, dtype=torch.float64))
        m.hbias.copy_(torch.randn(14, generator=g, dtype=torch.float64))
    products = log_partition_exact(m, beta=beta, progress=False, method="products")
    direct = log_partition_exact(m, beta=beta, progress=False, method="softplus", compile=False)
    assert products == pytest.approx(direct, abs=1e-9, rel=0)
    with pytest.raises(ValueError, match="`method`"):
        log_partition_exact(m, method="fast")
