"""Centering (Melchior, Fischer & Wiskott 2016) against brute-force enumeration, autograd and numpy."""

import itertools

import numpy as np
import pytest
import torch
from conftest import randomize

from natural_bm import DBM, RBM, SGD
from natural_bm.estimators import log_partition_exact
from natural_bm.kernels import centred_weight_gradient, offset_bias_shift
from natural_bm.rng import RandomSource
from natural_bm.training.algorithms import ExactGradient
from natural_bm.training.centering import Centering


def _centred_log_p_v(sizes, edges, weights, c, mu):
    """log p(v) of the centred energy -sum (x_i - mu_i) W (x_j - mu_j) - sum (x_k - mu_k) c_k, by enumerating
    every state of every layer in numpy float64: {v as a tuple: log p(v)}."""
    n = sum(sizes)
    starts = np.cumsum([0] + list(sizes))
    x = np.array(list(itertools.product([0.0, 1.0], repeat=n)))
    layers = [x[:, starts[k]: starts[k + 1]] - mu[k] for k in range(len(sizes))]
    neg_e = sum(layers[k] @ c[k] for k in range(len(sizes)))
    for (i, j), W in zip(edges, weights, strict=True):
        neg_e = neg_e + np.einsum("ni,ij,nj->n", layers[i], W, layers[j])
    log_z = np.logaddexp.reduce(neg_e)
    out = {}
    for v_code, e in zip(map(tuple, x[:, : sizes[0]]), neg_e, strict=True):
        out[v_code] = np.logaddexp(out.get(v_code, -np.inf), e)
    return {v: lp - log_z for v, lp in out.items()}


@pytest.mark.parametrize("sizes,topology", [([5, 4], None), ([4, 3, 3], None), ([3, 2, 2, 2], {0: [1, 3], 1: [2]})])
def test_centred_model_and_its_uncentred_conversion_have_the_same_p_v(sizes, topology):
    d = RBM(sizes[0], sizes[1], dtype=torch.float64) if len(sizes) == 2 else DBM(sizes, topology, dtype=torch.float64)
    randomize(d, scale=0.8, seed=3)
    g = torch.Generator().manual_seed(1)
    c = [torch.randn(n, generator=g, dtype=torch.float64) for n in sizes]
    mu = [torch.rand(n, generator=g, dtype=torch.float64) for n in sizes]
    with torch.no_grad():  # the model's (uncentred) biases: b = c - shift(W, mu)
        for k in range(d.n_layers):
            d.bias(k).copy_(c[k] - offset_bias_shift(k, d.weights, mu))
    reference = _centred_log_p_v(sizes, d.edges, [d.weight(*e).numpy() for e in d.edges], [t.numpy() for t in c],
                                 [t.numpy() for t in mu])
    v = torch.tensor(list(reference), dtype=torch.float64)
    ours = -d.free_energy(v) - log_partition_exact(d)
    np.testing.assert_allclose(ours.numpy(), np.array(list(reference.values())), rtol=0, atol=1e-10)
    # and Centering.centred_biases inverts the conversion
    cen = Centering()
    cen.offsets = mu
    for k, ck in enumerate(cen.centred_biases(d)):
        torch.testing.assert_close(ck, c[k], rtol=0, atol=1e-12)


def test_centred_gradient_is_the_gradient_of_the_log_likelihood_in_centred_parameters():
    """Autograd through brute-force enumeration of mean log p(x) as a function of (W, c) with mu fixed."""
    m = randomize(RBM(4, 3, dtype=torch.float64), scale=0.7, seed=5)
    x = (torch.rand(12, 4, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    mu = [torch.tensor([0.3, 0.6, 0.1, 0.8], dtype=torch.float64), torch.tensor([0.5, 0.2, 0.7], dtype=torch.float64)]
    cen = Centering()
    cen.offsets = mu
    W = m.W.detach().clone().requires_grad_(True)
    c = [t.detach().clone().requires_grad_(True) for t in cen.centred_biases(m)]
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=7)), dtype=torch.float64)
    v, h = states[:, :4], states[:, 4:]
    neg_e = (v - mu[0]) @ c[0] + (h - mu[1]) @ c[1] + (((v - mu[0]) @ W) * (h - mu[1])).sum(1)
    log_z = torch.logsumexp(neg_e, 0)
    codes = (v * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    log_pv = torch.stack([torch.logsumexp(neg_e[codes == i], 0) for i in range(16)]) - log_z
    row_codes = (x * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    log_pv[row_codes].mean().backward()
    grads, _, _ = ExactGradient().step(m, x, None, RandomSource(0))
    dW = centred_weight_gradient(grads["W"], grads["vbias"], grads["hbias"], mu[0], mu[1])
    torch.testing.assert_close(dW, W.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(grads["vbias"], c[0].grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(grads["hbias"], c[1].grad, rtol=0, atol=1e-12)


def test_one_centred_sgd_update_matches_numpy():
    """fit with one batch: c = b + W mu_h, W' = W + lr dW_c, b' = c + lr db - W' mu_h (the hidden biases
    likewise with mu_v), then the offsets move towards the batch's data-dependent means."""
    m = randomize(RBM(5, 3, dtype=torch.float64), scale=0.5, seed=2)
    W0, b0, c0 = (t.detach().numpy().copy() for t in (m.W, m.vbias, m.hbias))
    x = (np.random.default_rng(0).random((8, 5)) < 0.5).astype(np.float64)
    rate, lr = 0.1, 0.05
    mu_v, mu_h = np.array([0.2, 0.7, 0.4, 0.9, 0.5]), np.array([0.3, 0.6, 0.1])
    cen = Centering(rate=rate, target="data")
    cen.offsets = [torch.from_numpy(mu_v.copy()), torch.from_numpy(mu_h.copy())]  # kept by fit (right shapes)
    m.compile(SGD(lr), ExactGradient(), centering=cen)
    grads, _, _ = ExactGradient().step(m, torch.from_numpy(x), None, RandomSource(0))  # deterministic gradients
    dW, db, dc = (grads[k].numpy() for k in ("W", "vbias", "hbias"))
    m.fit(x, batch_size=8, epochs=1, verbose=0, seed=0, shuffle=False)

    bc, cc = b0 + W0 @ mu_h, c0 + mu_v @ W0  # centred biases
    W1 = W0 + lr * (dW - np.outer(mu_v, dc) - np.outer(db, mu_h))
    b1, c1 = bc + lr * db - W1 @ mu_h, cc + lr * dc - mu_v @ W1
    np.testing.assert_allclose(m.W.detach().numpy(), W1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.vbias.detach().numpy(), b1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.hbias.detach().numpy(), c1, rtol=0, atol=1e-12)
    data_h = (1 / (1 + np.exp(-(x @ W0 + c0)))).mean(0)  # the batch's data-dependent means, before the update
    np.testing.assert_allclose(m.trainer.centering.offsets[0].numpy(), (1 - rate) * mu_v + rate * x.mean(0), atol=1e-12)
    np.testing.assert_allclose(m.trainer.centering.offsets[1].numpy(), (1 - rate) * mu_h + rate * data_h, atol=1e-12)


def test_zero_offsets_at_rate_zero_train_exactly_as_uncentred():
    """With offsets 0 that never move, the centred update is the plain one, bit for bit (DBM, mean-field PCD,
    momentum): the conversion adds nothing."""
    x = (np.random.default_rng(1).random((60, 6)) < 0.4).astype(np.float32)
    runs = []
    for centred in (False, True):
        d = DBM([6, 4, 3], seed=0)
        cen = None
        if centred:
            cen = Centering(rate=0.0)
            cen.offsets = [torch.zeros(n) for n in d.layer_sizes]
        d.compile(SGD(0.05, momentum=0.5), "mfpcd", centering=cen, n_chains=10, k=2, mf_steps=5)
        d.fit(x, batch_size=20, epochs=3, verbose=0, seed=0)
        runs.append(d)
    for name in runs[0].param_names:
        assert torch.equal(getattr(runs[0], name), getattr(runs[1], name)), name


@pytest.mark.parametrize("target", ["data", "model", "average"])
def test_centred_training_resumes_bit_identically(tmp_path, target):
    x = (np.random.default_rng(2).random((80, 7)) < 0.3).astype(np.float32)

    def build():
        return DBM([7, 5, 4], seed=1).compile(SGD(0.05, momentum=0.5), "mfpcd", centering={"rate": 0.05,
                                              "target": target}, n_chains=10, k=1, mf_steps=3)

    full = build()
    full.fit(x, batch_size=20, epochs=4, verbose=0, seed=3)
    half = build()
    half.fit(x, batch_size=20, epochs=2, verbose=0, seed=3)
    half.save(tmp_path / "half.pt")
    resumed = DBM.load(tmp_path / "half.pt")
    assert resumed.trainer.centering.get_config() == {"rate": 0.05, "target": target}
    resumed.fit(x, batch_size=20, epochs=4, initial_epoch=2, verbose=0, seed=3)
    for name in full.param_names:
        assert torch.equal(getattr(full, name), getattr(resumed, name)), name
    for a, b in zip(full.trainer.centering.offsets, resumed.trainer.centering.offsets, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(full.trainer.centering.offsets[1], half.trainer.centering.offsets[1])  # the offsets did move


def test_centred_training_is_invariant_to_flipping_the_data_and_uncentred_is_not():
    """Melchior et al.'s invariance: flipping the visible units (x -> 1 - x) mirrors a centred machine's
    whole trajectory (W -> -W, visible centred biases -> minus themselves, offsets -> 1 - offsets), so the
    exact log-likelihoods of x and of 1 - x agree to rounding; the uncentred machine learns the two differently.
    Exact gradients on the full batch: no sampling noise."""
    patterns = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1], [1, 0, 1, 0, 1, 0]], float)
    x = np.repeat(patterns, [10, 20, 30, 40], axis=0)

    def exact_ll(centering, data, mirrored=False):
        m = randomize(RBM(6, 4, dtype=torch.float64), scale=0.1, seed=0)
        if mirrored:  # the same initial distribution, flipped: W -> -W, b -> -b, c -> c + 1^T W
            with torch.no_grad():
                m.hbias += m.W.sum(0)
                m.W.neg_()
                m.vbias.neg_()
        m.compile(SGD(1.0, momentum=0.5), ExactGradient(), centering=centering)
        m.fit(data, batch_size=len(data), epochs=100, verbose=0, seed=0)
        return float((-m.free_energy(torch.from_numpy(data))).mean()) - log_partition_exact(m)

    centred = exact_ll({"rate": 0.1}, x), exact_ll({"rate": 0.1}, 1 - x, mirrored=True)
    plain = exact_ll(None, x), exact_ll(None, 1 - x, mirrored=True)
    assert abs(centred[0] - centred[1]) < 1e-8
    assert abs(plain[0] - plain[1]) > 0.03  # measured: -1.653 against -1.724
    assert centred[0] > -1.9  # it learns (-1.742 measured; the optimum, minus the data's entropy, is -1.28)


def test_centering_errors_name_the_argument():
    with pytest.raises(ValueError, match="rate"):
        Centering(rate=1.5)
    with pytest.raises(ValueError, match="target"):
        Centering(target="mean")
    with pytest.raises(ValueError, match="`centering`"):
        RBM(4, 2).compile("sgd", "cd", centering="yes")
    d = DBM([4, 3, 2], seed=0)
    d.input_factors = {(1, 0): 2.0}
    with pytest.raises(ValueError, match="input_factors"):
        d.compile("sgd", "mfpcd", centering=True)


def test_runner_config_trains_a_centred_dbm(tmp_path):
    from natural_bm import run as runner
    from natural_bm.run import ConfigError

    cfg = {"model": {"type": "dbm", "layer_sizes": [9, 4, 3]}, "data": {"name": "bars_and_stripes", "size": 3},
           "training": {"epochs": 2, "batch_size": 20, "n_chains": 10, "mf_steps": 3,
                        "centering": {"rate": 0.02, "target": "average"}},
           "ais": {"n_runs": 10, "n_betas": 50}, "samples": {"plot_every": 1000}, "seed": 0}
    runner.train(runner.resolve_config(cfg), tmp_path / "run", verbose=0)
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["training"]["centering"]
    assert state["rate"] == 0.02 and state["target"] == "average" and len(state["offsets"]) == 3
    bad = {**cfg, "training": {**cfg["training"], "centering": {"rate": 0.02, "speed": 1}}}
    with pytest.raises(ConfigError, match="training.centering"):
        runner.train(runner.resolve_config(bad), tmp_path / "bad", verbose=0)
