"""DBMs against brute force over all states."""

import itertools

import numpy as np
import pytest
import torch
from conftest import random_rbm, randomize
from scipy.special import logsumexp

from natural_bm import DBM, SGD
from natural_bm.estimators import AIS, EngineOptions, log_likelihood, log_partition_exact
from natural_bm.training import pretrain_dbm


def all_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def random_dbm(sizes, topology=None, scale=1.0, seed=0):
    d = DBM(sizes, topology, dtype=torch.float64)
    randomize(d, scale, seed=seed)
    return d


def np_params(d):
    W = {e: w.detach().numpy() for e, w in d.weights.items()}
    b = [x.detach().numpy() for x in d.biases]
    return W, b


def brute_log_joint(d):
    """log p*(x) for every joint state (numpy), with the per-layer state lists."""
    W, b = np_params(d)
    grids = [all_states(n) for n in d.layer_sizes]
    idx = np.array(list(itertools.product(*[range(len(g)) for g in grids])))
    states = [grids[k][idx[:, k]] for k in range(d.n_layers)]
    logp = sum(np.einsum("ni,ij,nj->n", states[i], w, states[j]) for (i, j), w in W.items())
    logp = logp + sum(states[k] @ b[k] for k in range(d.n_layers))
    return logp, states, idx


CASES = [([8, 4, 3], None), ([4, 3, 3, 2], {0: {1, 3}, 1: {2}, 2: {3}})]


@pytest.mark.parametrize("sizes,topology", CASES)
def test_log_z_free_energy_and_conditionals_against_brute_force(sizes, topology):
    d = random_dbm(sizes, topology, seed=len(sizes))
    logp, states, idx = brute_log_joint(d)
    assert log_partition_exact(d) == pytest.approx(logsumexp(logp), abs=1e-9)
    # free energy of v: marginalise all hidden layers
    nv = 2 ** sizes[0]
    log_pv = np.array([logsumexp(logp[idx[:, 0] == i]) for i in range(nv)])
    V = all_states(sizes[0])
    np.testing.assert_allclose(-d.free_energy(torch.from_numpy(V)).numpy(), log_pv, atol=1e-9)
    # free energy of the even layers with the odd layers summed out
    even = d.parity_layers(0)
    keys = np.stack([idx[:, k] for k in even], 1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    ref = np.array([logsumexp(logp[inv.ravel() == u]) for u in range(len(uniq))])
    st = [None] * d.n_layers
    for c, k in enumerate(even):
        st[k] = torch.from_numpy(all_states(sizes[k])[uniq[:, c]])
    np.testing.assert_allclose(-d.free_energy_parity(st, sum_out=1).numpy(), ref, atol=1e-9)
    # conditionals of every layer: Bayes' rule on a few random full states
    p = np.exp(logp - logsumexp(logp))
    rng = np.random.default_rng(0)
    for row in rng.choice(len(p), 5, replace=False):
        full = [torch.from_numpy(states[k][row : row + 1]) for k in range(d.n_layers)]
        for k in range(d.n_layers):
            others = np.all([idx[:, j] == idx[row, j] for j in range(d.n_layers) if j != k], axis=0)
            cond = p[others] / p[others].sum()
            expected = cond @ states[k][others]
            np.testing.assert_allclose(d.prob_layer(k, full).numpy()[0], expected, atol=1e-10)


def test_middle_layer_conditional_includes_top_down_input():
    """natural_bm (2017) dropped the top-down input of middle layers."""
    d = random_dbm([3, 2, 2], seed=1)
    s = [torch.ones(1, 3, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64),
         torch.ones(1, 2, dtype=torch.float64)]
    expected = torch.sigmoid(d.b_1 + s[0] @ d.W_0_1 + s[2] @ d.W_1_2.T)
    torch.testing.assert_close(d.prob_layer(1, s), expected)


def test_topology_errors_name_the_edge():
    with pytest.raises(ValueError, match=r"edge \(0, 2\)"):
        DBM([4, 3, 2], {0: {1, 2}, 1: {2}})
    with pytest.raises(ValueError, match="outside"):
        DBM([4, 3], {0: {5}})
    with pytest.raises(ValueError, match=r"layer\(s\) \[2\]"):
        DBM([4, 3, 2], {0: {1}})
    with pytest.raises(ValueError, match="at least 2"):
        DBM([4])


def test_two_layer_dbm_equals_rbm():
    r = random_rbm(6, 4, seed=3)
    d = DBM.from_rbm(r)
    V = torch.from_numpy(all_states(6))
    torch.testing.assert_close(d.free_energy(V), r.free_energy(V))
    torch.testing.assert_close(d.free_energy(V, beta=0.3), r.free_energy(V, beta=0.3))
    torch.testing.assert_close(d.prob_layer(1, [V, None]), r.prob_h_given_v(V))
    H = torch.from_numpy(all_states(4))
    torch.testing.assert_close(d.prob_layer(0, [None, H], beta=0.5), r.prob_v_given_h(H, beta=0.5))
    W, b, c = (t.detach().numpy() for t in (r.W, r.vbias, r.hbias))
    Vn, Hn = all_states(6), all_states(4)
    brute = logsumexp(Vn @ W @ Hn.T + (Vn @ b)[:, None] + (Hn @ c)[None, :])  # independent numpy reference
    assert log_partition_exact(d) == pytest.approx(brute, abs=1e-10)
    assert log_partition_exact(r) == pytest.approx(brute, abs=1e-10)
    assert not hasattr(d, "log_partition_exact")  # one name: the estimator (the deprecated alias is gone)
    torch.testing.assert_close(d.log_prob_bound(V), -r.free_energy(V))


# the compiled case is slow-marked (29 s on the project machine with torch's compile cache empty, nearly all of
# it compiling): the eager case checks the same equality step for step, and the compiled chunks' equality with
# the eager steps is test_compiled_dbm_ais_chunks_and_tail_follow_the_counter_stream's (layered kernel) and
# test_estimators' test_compiled_ais_chunks_and_tail_follow_the_counter_stream's (two-layer kernel)
@pytest.mark.parametrize("compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_ais_of_a_two_layer_dbm_equals_ais_of_its_rbm(compile):
    """One AIS engine: the DBM made from an RBM anneals exactly as the RBM does (same seed, same weights)."""
    r = random_rbm(12, 5, scale=0.5, seed=2, dtype=torch.float32)
    d = DBM.from_rbm(r)
    data = (np.random.default_rng(0).random((50, 12)) < 0.4).astype(np.float32)
    runs = []
    for model in (r, d):
        ais = AIS(model, data=data, n_runs=16, n_betas=300, seed=5, progress=False,
                  engine=EngineOptions(jit_compile=compile))
        runs.append((ais.run_logZ(), ais.log_w.clone(), ais.run_reverse(data=data), ais.log_w_reverse.clone()))
    (z_r, w_r, zr_r, wr_r), (z_d, w_d, zr_d, wr_d) = runs
    assert torch.equal(w_r, w_d) and torch.equal(wr_r, wr_d)
    assert z_r == z_d and zr_r == zr_d


@pytest.mark.parametrize("sizes,topology", CASES)
def test_mean_field_bound_is_below_exact_log_likelihood(sizes, topology):
    d = random_dbm(sizes, topology, scale=0.7, seed=4)
    V = torch.from_numpy(all_states(sizes[0]))
    mu, steps = d.mean_field(V, max_steps=100, atol=1e-10)
    assert steps < 100  # converged
    exact = -d.free_energy(V)
    bound = d.log_prob_bound(V, mu=mu)
    assert bool((bound <= exact + 1e-10).all())
    assert float((exact - bound).mean()) < 0.5  # and not vacuous
    # fixed point: mu_k = sigmoid(input_k(mu))
    for k in range(1, d.n_layers):
        torch.testing.assert_close(mu[k], d.prob_layer(k, mu), atol=1e-8, rtol=0)


def test_mean_field_stops_early_and_reports_steps():
    d = random_dbm([8, 4, 3], scale=0.1, seed=5)
    V = torch.from_numpy(all_states(8))
    _, steps_loose = d.mean_field(V, max_steps=50, atol=1e-2)
    _, steps_tight = d.mean_field(V, max_steps=50, atol=1e-12)
    assert 1 <= steps_loose < steps_tight <= 50


def test_block_gibbs_samples_the_joint_distribution():
    d = random_dbm([3, 2, 2], scale=0.8, seed=6)
    logp, states, idx = brute_log_joint(d)
    p = np.exp(logp - logsumexp(logp))
    g = torch.Generator().manual_seed(0)
    v0 = torch.zeros(20000, 3, dtype=torch.float64)
    s = d.gibbs(d.init_states(v0, g), k=30, generator=g)
    code = sum(s[k].numpy() @ (2 ** np.arange(n - 1, -1, -1)) * (2 ** sum(d.layer_sizes[k + 1:]))
               for k, n in enumerate(d.layer_sizes)).astype(int)
    ref_code = sum(idx[:, k] * 2 ** sum(d.layer_sizes[k + 1:]) for k in range(3))
    freq = np.bincount(code, minlength=len(p)) / len(code)
    np.testing.assert_allclose(freq[ref_code], p, atol=0.015)


@pytest.mark.parametrize("sizes,topology", CASES)
def test_dbm_ais_matches_exact(sizes, topology):
    d = random_dbm(sizes, topology, scale=0.8, seed=7)
    exact = log_partition_exact(d)
    ais = AIS(d, n_runs=200, n_betas=4000, base="uniform", seed=0, progress=False)
    z, lo, hi = ais.estimate_log_error_Z()
    assert abs(z - exact) < 0.1 and lo <= exact <= hi
    rev = ais.run_reverse(n_gibbs=300)
    assert abs(rev - exact) < 0.1


@pytest.mark.parametrize("sizes,topology", CASES)
def test_dbm_ais_eager_path_matches_exact(sizes, topology):
    """``compile=False``: the eager loop with PCG64 uniforms (the compiled path is tested above)."""
    d = random_dbm(sizes, topology, scale=0.8, seed=7)
    exact = log_partition_exact(d)
    z, lo, hi = AIS(d, n_runs=200, n_betas=4000, base="uniform", seed=0, progress=False,
                    engine=EngineOptions(jit_compile=False)).estimate_log_error_Z()
    assert abs(z - exact) < 0.1 and lo <= exact <= hi


@pytest.mark.parametrize("sizes,topology", CASES)
def test_dbm_ais_annealing_the_even_layers_matches_exact(sizes, topology):
    """parity=0: AIS anneals v (and h2...) with the odd layers summed out, another estimator of the log Z
    that the default (odd layers annealed, tested above) estimates; forward and reverse against
    enumeration, with a data base model."""
    from natural_bm.estimators.ais_steps import annealed_parity

    d = random_dbm(sizes, topology, scale=0.8, seed=7)
    exact = log_partition_exact(d)
    x = (np.random.default_rng(1).random((50, sizes[0])) < 0.4).astype(np.float64)
    ais = AIS(d, data=x, n_runs=200, n_betas=3000, seed=0, progress=False, parity=0,
              engine=EngineOptions(jit_compile=False))
    assert ais.annealed_layers == list(range(0, len(sizes), 2))
    z, lo, hi = ais.estimate_log_error_Z()
    assert abs(z - exact) < 0.1 and lo <= exact <= hi
    assert abs(ais.run_reverse(n_gibbs=200) - exact) < 0.1
    assert annealed_parity(d) == 1 and annealed_parity(d, 1) == 1 and annealed_parity(d, 0) == 0


def test_rbm_ais_annealing_the_hidden_layer_matches_exact():
    """parity=1 on an RBM anneals the hidden units with the visible ones summed out (the layered kernel's
    step, which the compiled path runs too: see the counter-stream test below)."""
    rbm = random_rbm(9, 5, scale=1.0, seed=3)
    exact = log_partition_exact(rbm)
    a = AIS(rbm, n_runs=200, n_betas=4000, base="uniform", seed=0, progress=False, parity=1,
            engine=EngineOptions(jit_compile=False))
    z, lo, hi = a.estimate_log_error_Z()
    assert a.annealed_layers == [1]
    assert abs(z - exact) < 0.1 and lo <= exact <= hi
    with pytest.raises(ValueError, match="parity"):
        AIS(rbm, parity=2)
    with pytest.raises(ValueError, match="parity"):
        AIS(rbm, parity="odd")


def test_compiled_dbm_ais_chunks_and_tail_follow_the_counter_stream():
    """Compiled chunks of steps_per_call steps plus an eager tail equal a step-by-step loop on the same counters
    (the engine's one counter layout: max(units of S, units of K) counters per run and step)."""
    from natural_bm.estimators import ais_engine, ais_steps
    from natural_bm.rng import gibbs_uniforms, stream_key

    sizes, topology = CASES[1]
    d = random_dbm(sizes, topology, scale=0.8, seed=3)
    per = ais_engine.LAYERED.steps_per_call
    betas = torch.linspace(0, 1, per * 3 + 2, dtype=torch.float64)  # 3 calls and a 1-step tail
    a = AIS(d, n_runs=9, betas=betas, base="uniform", seed=4, progress=False, engine=EngineOptions(jit_compile=True))
    a.run_logZ()
    assert not ais_engine.LAYERED.steps.failed  # the compiled path ran, not the eager fall-back
    K = d.parity_layers(ais_steps.annealed_parity(d))
    S = d.parity_layers(1 - ais_steps.annealed_parity(d))
    n_S, n_K = sum(sizes[k] for k in S), sum(sizes[k] for k in K)
    b_A = ais_steps.base_biases(d, a.base_vbias)
    gen = a._source(0)
    state = tuple(gen.bernoulli(torch.sigmoid(b_A[k]).expand(9, -1).contiguous()) for k in K)
    weights = [d.weights[e] for e in d.edges]
    up = tuple((lambda W: lambda bias, x: bias + x @ W)(W) for W in weights)
    down = tuple((lambda W: lambda bias, x: bias + x @ W.T)(W) for W in weights)
    consts = (up, down, tuple(b_A), tuple(d.biases), (None,) * d.n_layers)
    static = (tuple(d.edges), tuple(K), tuple(S), tuple(sizes), ("bernoulli",) * d.n_layers)
    log_w = torch.zeros(9, dtype=torch.float64)
    key = torch.tensor(stream_key(4, 1))
    M = max(n_S, n_K)
    idx = torch.arange(9 * M).view(9, M)
    for k in range(1, len(betas)):
        u_S, u_K = gibbs_uniforms(idx + k * 9 * M, key, n_K, n_S, torch.float64)
        state, log_w = ais_steps.layered_step(state, log_w, consts, betas[k], betas[k - 1], u_S, u_K, static)
    np.testing.assert_allclose(a.log_w.numpy(), log_w.numpy(), rtol=1e-10, atol=1e-10)


def test_dbm_ais_float32_with_packed_weights_matches_exact(monkeypatch):
    from natural_bm import onednn

    monkeypatch.setattr(onednn, "MIN_PACKED_ELEMENTS", 0)  # pack these small matrices too
    d = random_dbm([12, 6, 5], scale=0.5, seed=2).to(dtype=torch.float32)
    exact = log_partition_exact(random_dbm([12, 6, 5], scale=0.5, seed=2))
    for packed in (True, False):
        z, lo, hi = AIS(d, n_runs=100, n_betas=3000, base="uniform", seed=0, progress=False,
                        engine=EngineOptions(packed_weights=packed)).estimate_log_error_Z()
        assert abs(z - exact) < 0.1 and lo <= exact <= hi


def test_dbm_ais_on_a_trained_model_with_data_base():
    x = (np.random.default_rng(0).random((400, 10)) < np.linspace(0.1, 0.9, 10)).astype(np.float64)
    d = DBM([10, 6, 4], dtype=torch.float64, seed=0).compile(SGD(0.05, momentum=0.5), "mfpcd", n_chains=50, k=3)
    d.fit(x, batch_size=50, epochs=5, verbose=0, seed=0)
    exact = log_partition_exact(d)
    z, lo, hi = AIS(d, data=x, n_runs=100, n_betas=3000, seed=1, progress=False).estimate_log_error_Z()
    assert abs(z - exact) < 0.1 and lo <= exact <= hi
    ll_bound, _ = log_likelihood(d, x, exact)
    ll_exact = float((-d.free_energy(torch.from_numpy(x)) - exact).mean())
    assert ll_bound <= ll_exact + 1e-9


def test_mfpcd_gradient_matches_exact_with_many_chains():
    d = random_dbm([5, 3, 2], scale=0.5, seed=8)
    logp, states, idx = brute_log_joint(d)
    p = np.exp(logp - logsumexp(logp))
    x = torch.from_numpy((np.random.default_rng(1).random((30, 5)) < 0.5).astype(np.float64))
    from natural_bm.training import MeanFieldPersistent

    alg = MeanFieldPersistent(k=50, n_chains=30000, mf_steps=100, mf_atol=1e-12)
    state = alg.init(d, x, torch.Generator().manual_seed(0))
    grads, _, _ = alg.step(d, x, state, torch.Generator().manual_seed(1))
    mu, _ = d.mean_field(x, max_steps=100, atol=1e-12)
    for (i, j) in d.edges:
        model_stat = np.einsum("n,ni,nj->ij", p, states[i], states[j])
        data_stat = (mu[i].T @ mu[j] / 30).numpy()
        np.testing.assert_allclose(grads[f"W_{i}_{j}"].numpy(), data_stat - model_stat, atol=0.02)


def test_greedy_pretraining_composes_the_rbms():
    from natural_bm.callbacks import LambdaCallback

    x = (np.random.default_rng(0).random((300, 12)) < 0.3).astype(np.float32)
    d = DBM([12, 8, 6, 4], seed=0)
    inputs = {}  # the training data each RBM's fit saw (all 300 rows are its monitoring rows)

    def record(layer):
        cb = LambdaCallback(on_train_begin=lambda logs: inputs.setdefault(layer, cb.params["train_data"].clone()))
        return [cb]

    rbms = pretrain_dbm(d, x, epochs=2, batch_size=50, seed=0, callbacks_factory=record)
    assert [(r.up_factor, r.down_factor) for r in rbms] == [(2.0, 1.0), (2.0, 2.0), (1.0, 2.0)]
    torch.testing.assert_close(d.W_0_1, rbms[0].W)
    torch.testing.assert_close(d.W_1_2, 0.5 * rbms[1].W)
    torch.testing.assert_close(d.W_2_3, rbms[2].W)
    torch.testing.assert_close(d.b_0, rbms[0].vbias)
    torch.testing.assert_close(d.b_3, rbms[2].hbias)
    # each RBM above the first was trained on the hidden probabilities of the one below, with its
    # doubled bottom-up input: sigmoid(2 v W + c)
    torch.testing.assert_close(inputs[0], torch.from_numpy(x))
    h1 = torch.sigmoid(2 * torch.from_numpy(x) @ rbms[0].W + rbms[0].hbias)
    torch.testing.assert_close(inputs[1], h1)
    h2 = torch.sigmoid(2 * h1 @ rbms[1].W + rbms[1].hbias)
    torch.testing.assert_close(inputs[2], h2)
    with pytest.raises(ValueError, match="chain"):
        pretrain_dbm(DBM([4, 3, 3, 2], {0: {1, 3}, 1: {2}, 2: {3}}), x[:, :4])


def test_pretrain_section_of_a_config_is_pretrain_dbm_with_those_settings(tmp_path):
    """The runner's ``pretrain`` section (per-RBM epochs, SGD with momentum schedule, k ramp, weight decay,
    per-minibatch binarisation) gives the weights of the same pretrain_dbm call written by hand, and one CSV
    log per RBM with its epochs and scheduled k."""
    import pandas as pd

    from natural_bm.callbacks import GibbsStepsScheduler, MomentumRateScheduler
    from natural_bm.run import pretrain_from_config as _pretrain
    from natural_bm.run import resolve_config

    x = np.random.default_rng(1).random((120, 10)).astype(np.float32)  # grey levels, binarised per minibatch
    cfg = resolve_config({
        "model": {"type": "dbm", "layer_sizes": [10, 6, 4]},
        "data": {"name": "files", "kind": "stochastic"},
        "training": {"batch_size": 20},
        "pretrain": {"epochs": [2, 3], "lr": 0.1, "momentum": 0.5, "l2": 0.001, "algorithm": "cd", "k": 1,
                     "schedule": {"momentum": [[0, 0.5], [1, 0.9]], "k": {"from": 1, "to": 3, "every": 1}}},
        "seed": 4,
    })
    by_config = DBM([10, 6, 4], seed=4)
    _pretrain(by_config, x, cfg, tmp_path, verbose=0)
    by_hand = DBM([10, 6, 4], seed=4)
    pretrain_dbm(by_hand, x, epochs=[2, 3], batch_size=20, seed=4, binarize=True, l2=0.001, k=1,
                 optimizer_factory=lambda layer: SGD(0.1, momentum=0.5),
                 callbacks_factory=lambda layer: [MomentumRateScheduler(lambda e: 0.5 if e < 1 else 0.9),
                                                  GibbsStepsScheduler(lambda e: min(3, 1 + e))])
    for name in by_hand.param_names:
        torch.testing.assert_close(getattr(by_config, name), getattr(by_hand, name), rtol=0, atol=0)
    logs = [pd.read_csv(tmp_path / f"pretrain_rbm{i}.csv") for i in (0, 1)]
    assert [len(log) for log in logs] == [2, 3]
    assert logs[1]["k"].tolist() == [1, 2, 3]
    not_binarized = DBM([10, 6, 4], seed=4)
    pretrain_dbm(not_binarized, x, epochs=[2, 3], batch_size=20, seed=4, l2=0.001)
    assert not torch.equal(not_binarized.W_0_1, by_hand.W_0_1)
    with pytest.raises(ValueError, match="one per RBM"):
        pretrain_dbm(DBM([10, 6, 4]), x, epochs=[1, 2, 3])


def test_pretrain_max_norm_from_config_bounds_every_rbm_column(tmp_path):
    """pretrain.max_norm caps each pre-training RBM's hidden units' incoming weights (the recipe DBM's
    pre-training left a W_0_1 column of norm 13 that its DBM phase inherited), as pretrain_dbm(max_norm=)."""
    from natural_bm.run import pretrain_from_config as _pretrain
    from natural_bm.run import resolve_config

    rng = np.random.default_rng(1)
    protos = np.array([[1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]], dtype=np.float32)
    x = np.abs(protos[rng.integers(0, 2, 120)] - (rng.random((120, 10)) < 0.05)).astype(np.float32)
    base = {"model": {"type": "dbm", "layer_sizes": [10, 6, 4]}, "data": {"name": "files"},
            "training": {"batch_size": 20}, "pretrain": {"epochs": [4, 4], "lr": 0.5, "momentum": 0.5}, "seed": 4}
    free = DBM([10, 6, 4], seed=4)
    _pretrain(free, x, resolve_config(base), tmp_path / "free", verbose=0)
    bound = 0.5
    assert max(free.W_0_1.norm(dim=0).max(), free.W_1_2.norm(dim=0).max()) > 1.5 * bound
    base["pretrain"]["max_norm"] = bound
    capped = DBM([10, 6, 4], seed=4)
    _pretrain(capped, x, resolve_config(base), tmp_path / "capped", verbose=0)
    assert capped.W_0_1.norm(dim=0).max() <= bound * (1 + 1e-6)
    assert capped.W_1_2.norm(dim=0).max() <= bound * (1 + 1e-6)
    by_hand = DBM([10, 6, 4], seed=4)
    pretrain_dbm(by_hand, x, epochs=[4, 4], batch_size=20, seed=4, max_norm=bound, k=1,
                 optimizer_factory=lambda layer: SGD(0.5, momentum=0.5))
    for name in by_hand.param_names:
        torch.testing.assert_close(getattr(capped, name), getattr(by_hand, name), rtol=0, atol=0)


def test_dbm_fit_save_load_resume(tmp_path):
    x = (np.random.default_rng(0).random((200, 12)) < 0.3).astype(np.float32)

    def make():
        return DBM([12, 6, 4], {0: {1}, 1: {2}}, seed=0).compile(SGD(0.05, momentum=0.5), "mfpcd", n_chains=20,
                                                                  k=2, mf_steps=5)

    full = make()
    hist = full.fit(x, batch_size=50, epochs=3, validation_data=x[:50], verbose=0, seed=2)
    assert set(hist.history) >= {"loss", "pll", "val_loss", "free_energy_gap"}
    half = make()
    half.fit(x, batch_size=50, epochs=2, verbose=0, seed=2)
    half.save(tmp_path / "dbm.pt")
    resumed = DBM.load(tmp_path / "dbm.pt")
    assert resumed.edges == full.edges
    resumed.fit(x, batch_size=50, epochs=3, initial_epoch=2, verbose=0, seed=2)
    for name in full.param_names:
        assert torch.equal(getattr(full, name), getattr(resumed, name))


@pytest.mark.mnist
def test_dbm_ais_matches_exact_on_an_mnist_sized_dbm(mnist_dir):
    """784 visible units: AIS (annealing h1, summing out v and h2; 3,000 betas, eager: the compiled path has
    its own tests) against enumeration of 2^16 h1 states."""
    from natural_bm.datasets import load_mnist

    x = load_mnist("sampled", path=mnist_dir, n_train=5000, n_valid=0, download=False).train
    d = DBM([784, 16, 10], seed=0)
    pretrain_dbm(d, x, epochs=2, batch_size=100, seed=0)
    d.compile(SGD(0.01, momentum=0.5), "mfpcd", n_chains=100, k=5, mf_steps=10)
    d.fit(x, batch_size=100, epochs=2, verbose=0, seed=0)
    exact = log_partition_exact(d)
    ais = AIS(d, data=x, n_runs=100, n_betas=3000, seed=0, progress=False, engine=EngineOptions(jit_compile=False))
    z, lo, hi = ais.estimate_log_error_Z()
    assert abs(z - exact) < 0.1 and lo <= exact <= hi, (z, lo, hi, exact)
    v = torch.from_numpy(x[:500])
    ll_bound, _ = log_likelihood(d, v, exact)
    ll_exact = float((-d.free_energy(v).double() - exact).mean())  # sums h2's 2^10 states exactly
    assert ll_bound <= ll_exact + 1e-3 and ll_exact - ll_bound < 5.0, (ll_bound, ll_exact)


def test_model_protocol_filters_unnormalized_log_prob_and_exact_states():
    """The methods estimators and callbacks use instead of asking which model class they hold."""
    r = random_rbm(6, 4, seed=1)
    d = DBM.from_rbm(r)
    v = torch.tensor([[0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 1]], dtype=r.dtype)
    assert torch.equal(r.filters(), r.W) and torch.equal(d.filters(), d.W_0_1)
    torch.testing.assert_close(r.unnormalized_log_prob(v), -r.free_energy(v))
    torch.testing.assert_close(d.unnormalized_log_prob(v), r.unnormalized_log_prob(v))
    assert r.n_exact_states() == d.n_exact_states() == 2**4
    skip = random_dbm([5, 3, 2, 2], {0: {1, 3}, 1: {2}, 2: {3}}, seed=2)
    assert skip.filters().shape == (5, 3 + 2)  # both edges from the visible layer


def test_dbm_init_from_data_gives_the_pixel_means_as_exact_marginals():
    """With zero weights, init_from_data makes each visible marginal of a DBM the data's mean (exact F(v))."""
    x = np.random.default_rng(0).random((300, 4)) ** 2
    d = DBM([4, 3, 2], seed=0, dtype=torch.float64)
    with torch.no_grad():
        for w in d.weights.values():
            w.zero_()
    d.init_from_data(x)
    codes = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    p = torch.exp(-d.free_energy(codes) - log_partition_exact(d))
    np.testing.assert_allclose((p[:, None] * codes).sum(0).numpy(), x.mean(0), atol=1e-9)


@pytest.mark.parametrize("case", ["chain", "skip", "label"])
def test_mean_field_reuses_the_data_input_bit_identically(case):
    """mean_field computes the data's (and clamped layers') part of each input once; the result is
    bit-identical to updating every layer with prob_layer from scratch at every step."""
    gen = torch.Generator().manual_seed(0)
    clamp = None
    if case == "chain":
        d = DBM([20, 12, 8], seed=1, dtype=torch.float64)
    elif case == "skip":
        d = DBM([10, 6, 5, 4], topology={0: {1, 3}, 1: {2}, 2: {3}}, seed=2)
    else:
        d = DBM([10, 6, 5, 4], units=["bernoulli", "bernoulli", "bernoulli", "softmax"], seed=3)
        clamp = {3: torch.eye(4)[torch.arange(7) % 4]}
    with torch.no_grad():
        for p in d.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.7)
    v = (torch.rand(7, d.layer_sizes[0], generator=gen) < 0.4).to(d.dtype)
    mu, steps = d.mean_field(v, max_steps=6, atol=0.0, clamp=clamp)
    ref = [v] + [None] * (d.n_layers - 1)
    for k in range(1, d.n_layers):
        ref[k] = clamp[k] if clamp and k in clamp else d.bottom_up_prob(k, ref)
    for _ in range(6):
        for parity in (1, 0):
            for k in d.parity_layers(parity):
                if k and not (clamp and k in clamp):
                    ref[k] = d.prob_layer(k, ref)
    assert steps == 6
    for a, b in zip(mu, ref, strict=True):
        assert torch.equal(a, b)
    # only a leading run of fixed neighbours is reused (layer 2 of "label" hears layer 1 first), which
    # keeps the order of the additions
    assert set(d.fixed_inputs({0, *(clamp or {})}, ref)) == ({1, 3} if case == "skip" else {1})


def _even_hidden_reference(d, V, mu):
    """numpy: log p*(v, h) with the odd layers summed out and log q(h) under the factorised Bernoulli q of
    means ``mu``, for every state h of the even hidden layers: (rows, states) arrays each."""
    logp, states, idx = brute_log_joint(d)
    even = d.parity_layers(0)[1:]
    V = V.numpy()
    grids = [all_states(d.layer_sizes[k]) for k in even]
    combos = list(itertools.product(*[range(len(g)) for g in grids]))
    v_code = idx[:, 0]
    v_rows = [int(np.flatnonzero((all_states(d.layer_sizes[0]) == v).all(1))[0]) for v in V]
    log_pvh = np.empty((len(V), len(combos)))
    log_q = np.empty((len(V), len(combos)))
    for c, combo in enumerate(combos):
        keep = np.ones(len(idx), bool)
        for k, i in zip(even, combo, strict=True):
            keep &= idx[:, k] == i
        for r, vr in enumerate(v_rows):
            log_pvh[r, c] = logsumexp(logp[keep & (v_code == vr)])
        lq = 0.0
        for k, i, g in zip(even, combo, grids, strict=True):
            m = mu[k].numpy()
            lq = lq + (g[i] * np.log(m) + (1 - g[i]) * np.log1p(-m)).sum(1)
        log_q[:, c] = lq
    return log_pvh, log_q


@pytest.mark.parametrize("sizes,topology", CASES)
def test_importance_sampled_log_prob_against_exact_expectations(sizes, topology):
    """One draw's expected log weight and many draws' estimate, against sums over all states."""
    from natural_bm.rng import RandomSource

    d = random_dbm(sizes, topology, scale=0.7, seed=4)
    V = torch.from_numpy(all_states(sizes[0]))[::3]
    mu, _ = d.mean_field(V, max_steps=100, atol=1e-10)
    log_pvh, log_q = _even_hidden_reference(d, V, mu)
    q = np.exp(log_q)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-12)
    exact = -d.free_energy(V).numpy()
    np.testing.assert_allclose(logsumexp(log_pvh, 1), exact, atol=1e-9)
    expected_one = (q * (log_pvh - log_q)).sum(1)  # E_q[log w] for K = 1
    bound = d.log_prob_bound(V, mu=mu).numpy()
    assert (expected_one >= bound - 1e-10).all() and (expected_one <= exact + 1e-10).all()
    assert (expected_one - bound).max() > 1e-3  # the sum over odd layers is tighter than their bound
    # K = 1, many times: the mean of the estimates is E_q[log w]
    reps = 20_000
    one = d.log_prob_importance(V.repeat(reps, 1), 1, RandomSource(1), mu=[m.repeat(reps, 1) for m in mu])
    one = one.view(reps, len(V)).numpy()
    se = one.std(0) / np.sqrt(reps)
    assert (np.abs(one.mean(0) - expected_one) < 5 * se + 1e-12).all()
    # K large: the estimate of p*(v) is unbiased, with the variance of w / p*(v) under q
    K = 3000
    est = d.log_prob_importance(V, K, RandomSource(2), mu=mu).numpy()
    rel_var = (q * np.exp(2 * (log_pvh - log_q - exact[:, None]))).sum(1) - 1
    np.testing.assert_array_less(np.abs(np.exp(est - exact) - 1), 5 * np.sqrt(rel_var / K) + 1e-12)


@pytest.mark.filterwarnings("ignore:mean log-likelihood")
def test_importance_sampled_log_likelihood_of_a_dbm():
    d = random_dbm([8, 4, 3], scale=0.7, seed=7)
    V = torch.from_numpy(all_states(8))
    V = V[(-d.free_energy(V)).argsort(descending=True)[:40]]  # the likeliest rows: no below-uniform warning
    log_z = log_partition_exact(d)
    exact = float((-d.free_energy(V)).mean()) - log_z
    bound, _ = log_likelihood(d, V, log_z)
    many, se = log_likelihood(d, V, log_z, importance_samples=3000, seed=3)
    assert bound < many - 1e-3 and abs(many - exact) < 2e-3 and se > 0
    assert log_likelihood(d, V, log_z, importance_samples=5, seed=3) == log_likelihood(
        d, V, log_z, importance_samples=5, seed=3)
    two = DBM.from_rbm(random_rbm(8, 3, scale=0.7, seed=1, dtype=torch.float64))
    z2 = log_partition_exact(two)
    assert log_likelihood(two, V, z2, importance_samples=4)[0] == pytest.approx(log_likelihood(two, V, z2)[0],
                                                                                abs=1e-12)
    with pytest.raises(ValueError, match="importance_samples"):
        log_likelihood(d, V, log_z, importance_samples=0)
    with pytest.raises(ValueError, match="`v`.*8"):  # the model's method checks its input too
        d.log_prob_importance(V[:, :7], 5)
    with pytest.raises(ValueError, match="`v`"):
        d.log_prob_importance(torch.full((2, 8), float("nan"), dtype=torch.float64), 5)


@pytest.mark.parametrize("sizes,topology", CASES)
def test_posterior_ais_one_step_is_importance_sampling_from_mean_field(sizes, topology):
    """betas [0, 1]: one AIS step from the base (the mean-field posterior) is one importance draw, so over
    many repeats its mean is E_q[log p*(v, h) - log q(h)] of the exact reference."""
    from natural_bm.estimators import log_prob_ais
    from natural_bm.rng import RandomSource

    d = random_dbm(sizes, topology, scale=0.7, seed=4)
    V = torch.from_numpy(all_states(sizes[0]))[::3]
    mu, _ = d.mean_field(V, max_steps=100, atol=1e-10)
    log_pvh, log_q = _even_hidden_reference(d, V, mu)
    expected_one = (np.exp(log_q) * (log_pvh - log_q)).sum(1)
    reps = 8_000
    one = log_prob_ais(d, V.repeat(reps, 1), n_chains=1, betas=[0.0, 1.0], generator=RandomSource(5),
                       batch_size=reps * len(V), mf_steps=100).view(reps, len(V)).numpy()
    se = one.std(0) / np.sqrt(reps)
    assert (np.abs(one.mean(0) - expected_one) < 5 * se + 1e-12).all()


@pytest.mark.parametrize("sizes,topology", CASES)
def test_posterior_ais_converges_to_the_exact_log_prob(sizes, topology):
    """Many betas: every chain's weight is close to p*(v) / Z_base, so even a few chains per image land
    within hundredths of a nat of -F(v) summed over all states, on weights where q alone is poor."""
    from natural_bm.estimators import log_prob_ais
    from natural_bm.rng import RandomSource

    d = random_dbm(sizes, topology, scale=2.0, seed=6)
    V = torch.from_numpy(all_states(sizes[0]))[::2]
    logp, states, idx = brute_log_joint(d)
    exact = np.array([logsumexp(logp[idx[:, 0] == int(np.flatnonzero((all_states(sizes[0]) == v).all(1))[0])])
                      for v in V.numpy()])
    mu, _ = d.mean_field(V, max_steps=100, atol=1e-10)
    one_draw = d.log_prob_importance(V, 1, RandomSource(3), mu=mu).numpy()
    assert np.abs(one_draw - exact).max() > 0.3  # q alone is far off for some rows
    est = log_prob_ais(d, V, n_chains=40, n_betas=400, generator=RandomSource(7)).numpy()
    np.testing.assert_allclose(est, exact, atol=0.05)
    same_draws = d.log_prob_importance(V, 40, RandomSource(3), mu=mu).numpy()
    # 0.004-0.007 nats against 0.036-0.040 for importance sampling from q with as many draws
    assert np.abs(est - exact).mean() < np.abs(same_draws - exact).mean() / 3
    few = log_prob_ais(d, V, n_chains=3, n_betas=20, generator=RandomSource(7)).numpy()
    np.testing.assert_array_equal(few, log_prob_ais(d, V, n_chains=3, n_betas=20, generator=RandomSource(7)).numpy())


def test_posterior_ais_with_gaussian_visible_and_softmax_units():
    from natural_bm.estimators import log_prob_ais
    from natural_bm.rng import RandomSource

    sigma = np.array([0.7, 1.3])
    d = DBM([2, 3, 2], units=[{"type": "gaussian", "sigma": sigma.tolist()}, "bernoulli", "bernoulli"],
            dtype=torch.float64)
    randomize(d, 1.0, seed=3)
    W01, W12 = d.W_0_1.detach().numpy(), d.W_1_2.detach().numpy()
    b0, b1, b2 = (x.detach().numpy() for x in d.biases)
    V = np.array([[0.3, -1.2], [2.0, 0.5], [-0.4, 0.0]])
    exact = []
    for v in V:  # log sum over h1, h2 of exp(-E(v, h1, h2)), by brute force
        terms = [-(v * v / (2 * sigma**2)).sum() + b0 @ v + v @ W01 @ np.array(h1) + b1 @ np.array(h1)
                 + b2 @ np.array(h2) + np.array(h1) @ W12 @ np.array(h2)
                 for h1 in itertools.product([0.0, 1.0], repeat=3) for h2 in itertools.product([0.0, 1.0], repeat=2)]
        exact.append(logsumexp(terms))
    est = log_prob_ais(d, torch.from_numpy(V), n_chains=20, n_betas=1000, generator=RandomSource(1)).numpy()
    np.testing.assert_allclose(est, exact, atol=0.02)
    # a softmax label layer as the annealed (even) layer
    s = DBM([6, 4, 5], units=["bernoulli", "bernoulli", "softmax"], dtype=torch.float64)
    randomize(s, 1.5, seed=2)
    V6 = torch.from_numpy(all_states(6))[::5]
    est = log_prob_ais(s, V6, n_chains=20, n_betas=1000, generator=RandomSource(2))
    np.testing.assert_allclose(est.numpy(), (-s.free_energy(V6)).numpy(), atol=0.02)


@pytest.mark.filterwarnings("ignore:mean log-likelihood")
def test_posterior_ais_log_likelihood_and_bad_input():
    from natural_bm.estimators import log_prob_ais

    d = random_dbm([8, 4, 3], scale=0.7, seed=7)
    V = torch.from_numpy(all_states(8))
    V = V[(-d.free_energy(V)).argsort(descending=True)[:40]]
    log_z = log_partition_exact(d)
    exact = float((-d.free_energy(V)).mean()) - log_z
    ll, se = log_likelihood(d, V, log_z, ais_chains=10, ais_betas=500, seed=1)
    assert abs(ll - exact) < 2e-3 and se > 0
    two = DBM.from_rbm(random_rbm(8, 3, scale=0.7, seed=1, dtype=torch.float64))  # exact for two layers
    np.testing.assert_array_equal(log_prob_ais(two, V, 3).numpy(), (-two.free_energy(V)).numpy())
    with pytest.raises(ValueError, match="not both"):
        log_likelihood(d, V, log_z, importance_samples=5, ais_chains=5)
    with pytest.raises(ValueError, match="ais_chains"):
        log_likelihood(d, V, log_z, ais_chains=0)
    with pytest.raises(ValueError, match="n_chains"):
        log_prob_ais(d, V, n_chains=0)
    with pytest.raises(ValueError, match="betas"):
        log_prob_ais(d, V, betas=[0.1, 1.0])
    with pytest.raises(ValueError, match="`v`.*8"):
        log_prob_ais(d, V[:, :7])
    with pytest.raises(ValueError, match="`v`"):
        log_prob_ais(d, torch.full((2, 8), float("nan"), dtype=torch.float64))
