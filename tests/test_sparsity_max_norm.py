"""Max-norm constraint and sparsity targets (the DBM recipe of REFERENCES.md) against numpy transcriptions."""

import numpy as np
import pytest
import torch

from natural_bm import DBM, RBM, SGD
from natural_bm.training.regularizers import apply_max_norm
from natural_bm.training.sparsity import Sparsity


def _numpy_max_norm(w, c):
    norms = np.sqrt((w**2).sum(0))
    return np.where(norms > c, w * (c / norms), w)


def test_max_norm_rescales_only_the_columns_over_the_bound():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 5)) * np.array([0.1, 1.0, 0.2, 3.0, 0.5])
    params = {"W": torch.from_numpy(w.copy())}
    apply_max_norm(params, 1.5, ("W",))
    expected = _numpy_max_norm(w, 1.5)
    np.testing.assert_allclose(params["W"].numpy(), expected, rtol=1e-14)
    under = np.sqrt((w**2).sum(0)) <= 1.5
    assert under.sum() >= 2 and (~under).sum() >= 2  # the test exercises both cases
    assert np.array_equal(params["W"].numpy()[:, under], w[:, under])  # bit-identical
    np.testing.assert_allclose(np.sqrt((params["W"].numpy() ** 2).sum(0))[~under], 1.5, rtol=1e-14)
    with pytest.raises(ValueError, match="max_norm"):
        apply_max_norm(params, 0.0, ("W",))


def test_sgd_step_with_max_norm_matches_numpy_and_spares_the_biases():
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(4, 3)), rng.normal(size=3) * 10
    gw, gb = rng.normal(size=(4, 3)), rng.normal(size=3) * 10
    m = RBM(4, 3, dtype=torch.float64)
    m.compile(SGD(0.5, momentum=0.5), "cd", max_norm=1.0)
    params = {"W": torch.from_numpy(w.copy()), "hbias": torch.from_numpy(b.copy())}
    m.optimizer.step(params, {"W": torch.from_numpy(gw), "hbias": torch.from_numpy(gb)})
    np.testing.assert_allclose(params["W"].numpy(), _numpy_max_norm(w + 0.5 * gw, 1.0), rtol=1e-13)
    np.testing.assert_allclose(params["hbias"].numpy(), b + 0.5 * gb, rtol=1e-13)  # biases are not constrained
    assert np.abs(params["hbias"].numpy()).max() > 1.0
    with pytest.raises(ValueError, match="max_norm"):
        RBM(4, 3).compile("sgd", "cd", max_norm=-1)


def test_fit_with_max_norm_keeps_every_weight_column_bounded_and_a_loose_bound_changes_nothing():
    x = (np.random.default_rng(2).random((60, 8)) < 0.3).astype(np.float32)

    def run(max_norm):
        d = DBM([8, 5, 4], seed=0).compile(SGD(0.5, momentum=0.9), "mfpcd", max_norm=max_norm, n_chains=10, k=1,
                                           mf_steps=3)
        d.fit(x, batch_size=20, epochs=5, verbose=0, seed=1)
        return d

    bounded, loose, plain = run(0.5), run(1e6), run(None)
    for name in plain.weight_names:
        assert float(torch.linalg.vector_norm(getattr(plain, name), dim=0).max()) > 0.6  # would exceed it
        assert float(torch.linalg.vector_norm(getattr(bounded, name), dim=0).max()) <= 0.5 * (1 + 1e-6)
    for name in plain.param_names:
        assert torch.equal(getattr(loose, name), getattr(plain, name)), name


def _numpy_sparsity_step(q, means, targets, cost, damping, edges, grads):
    """One update of the damped estimates q and the penalised gradients, written out in numpy."""
    out = {k: v.copy() for k, v in grads.items()}
    diffs = {}
    for k, p in targets.items():
        q[k] = means[k].copy() if k not in q else damping * q[k] + (1 - damping) * means[k]
        diffs[k] = q[k] - p
        out[f"b_{k}"] -= cost * diffs[k]
    for i, j in edges:
        if j in diffs:
            out[f"W_{i}_{j}"] -= cost * np.outer(means[i], diffs[j])
        if i in diffs:
            out[f"W_{i}_{j}"] -= cost * np.outer(diffs[i], means[j])
    return out


def test_sparsity_gradient_and_damped_estimates_match_numpy_on_a_three_layer_dbm_with_a_skip_edge():
    rng = np.random.default_rng(3)
    d = DBM([5, 4, 3, 2], topology={0: {1, 3}, 1: {2}, 2: {3}}, dtype=torch.float64)
    sp = Sparsity(target={1: 0.2, 3: 0.1}, cost=0.3, damping=0.8)
    sp.check_model(d)
    q: dict = {}
    for _ in range(3):
        means = [rng.random(n) for n in d.layer_sizes]
        grads = {name: rng.normal(size=tuple(getattr(d, name).shape)) for name in d.param_names}
        got = sp.add_gradient(d, {k: torch.from_numpy(v) for k, v in grads.items()},
                              [torch.from_numpy(m) for m in means])
        want = _numpy_sparsity_step(q, means, {1: 0.2, 3: 0.1}, 0.3, 0.8, d.edges, grads)
        for name in d.param_names:
            np.testing.assert_allclose(got[name].numpy(), want[name], rtol=1e-13, err_msg=name)
        assert np.array_equal(got["b_2"].numpy(), grads["b_2"])  # an untargeted layer's bias is untouched
    for k in (1, 3):
        np.testing.assert_allclose(sp.q[k].numpy(), q[k], rtol=1e-13)


def test_sparsity_drives_the_mean_hidden_activation_to_its_target():
    """A strong target pulls an RBM's mean hidden activation on its training data to 0.05; without it
    the same run ends far above."""
    x = (np.random.default_rng(4).random((200, 12)) < 0.5).astype(np.float32)

    def mean_activation(sparsity):
        m = RBM(12, 10, seed=0).compile(SGD(0.1, momentum=0.5), "cd", sparsity=sparsity)
        m.fit(x, batch_size=20, epochs=30, verbose=0, seed=0)
        return float(m.prob_h_given_v(torch.from_numpy(x)).mean())

    assert abs(mean_activation({"target": 0.05, "cost": 1.0, "damping": 0.5}) - 0.05) < 0.02
    assert mean_activation(None) > 0.3


def test_sparsity_training_resumes_bit_identically_and_cost_zero_changes_nothing(tmp_path):
    x = (np.random.default_rng(5).random((80, 7)) < 0.3).astype(np.float32)

    default = {"target": {1: 0.1, 2: 0.2}, "cost": 0.1, "damping": 0.9}

    def build(sparsity=default):  # noqa: B006 (never mutated)
        return DBM([7, 5, 4], seed=1).compile(SGD(0.05, momentum=0.5), "mfpcd", sparsity=sparsity, max_norm=2.0,
                                              centering={"rate": 0.05}, n_chains=10, k=1, mf_steps=3)

    full = build()
    full.fit(x, batch_size=20, epochs=4, verbose=0, seed=3)
    half = build()
    half.fit(x, batch_size=20, epochs=2, verbose=0, seed=3)
    half.save(tmp_path / "half.pt")
    resumed = DBM.load(tmp_path / "half.pt")
    assert resumed.trainer.sparsity.get_config() == {"target": {1: 0.1, 2: 0.2}, "cost": 0.1, "damping": 0.9}
    assert resumed.trainer.max_norm == 2.0
    resumed.fit(x, batch_size=20, epochs=4, initial_epoch=2, verbose=0, seed=3)
    for name in full.param_names:
        assert torch.equal(getattr(full, name), getattr(resumed, name)), name
    for k in (1, 2):
        assert torch.equal(full.trainer.sparsity.q[k], resumed.trainer.sparsity.q[k])
    zero, none = build({"target": 0.1, "cost": 0.0}), build(None)
    zero.fit(x, batch_size=20, epochs=2, verbose=0, seed=3)
    none.fit(x, batch_size=20, epochs=2, verbose=0, seed=3)
    for name in none.param_names:
        assert torch.equal(getattr(zero, name), getattr(none, name)), name


def test_sparsity_errors_name_the_argument():
    with pytest.raises(ValueError, match="target"):
        Sparsity(target=1.5)
    with pytest.raises(ValueError, match="hidden layers"):
        Sparsity(target={0: 0.1})
    with pytest.raises(ValueError, match="damping"):
        Sparsity(damping=1.0)
    with pytest.raises(ValueError, match="cost"):
        Sparsity(cost=-1)
    with pytest.raises(ValueError, match="layer 3"):
        DBM([4, 3, 2]).compile("sgd", "mfpcd", sparsity={"target": {3: 0.1}})
    with pytest.raises(ValueError, match="Bernoulli"):
        DBM([4, 3, 2], units=["bernoulli", "bernoulli", "softmax"]).compile("sgd", "mfpcd", sparsity={"target": 0.1})
    with pytest.raises(ValueError, match="`sparsity`"):
        RBM(4, 2).compile("sgd", "cd", sparsity=0.1)


def test_runner_config_trains_with_max_norm_and_sparsity(tmp_path):
    from natural_bm import run as runner
    from natural_bm.run import ConfigError

    cfg = {"model": {"type": "dbm", "layer_sizes": [9, 4, 3]}, "data": {"name": "bars_and_stripes", "size": 3},
           "training": {"epochs": 2, "batch_size": 20, "n_chains": 10, "mf_steps": 3, "max_norm": 0.3,
                        "sparsity": {"target": {1: 0.2, 2: 0.1}, "cost": 0.01}},
           "optimizer": {"lr": 0.5},
           "ais": {"n_runs": 10, "n_betas": 50}, "samples": {"plot_every": 1000}, "seed": 0}
    runner.train(runner.resolve_config(cfg), tmp_path / "run", verbose=0)
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert saved["training"]["sparsity"]["cost"] == 0.01 and saved["training"]["max_norm"] == 0.3
    assert set(saved["training"]["sparsity"]["q"]) == {1, 2}
    for name in ("W_0_1", "W_1_2"):
        assert float(torch.linalg.vector_norm(saved["state_dict"][name], dim=0).max()) <= 0.3 * (1 + 1e-6)
    bad = {**cfg, "training": {**cfg["training"], "sparsity": {"target": 0.1, "speed": 1}}}
    with pytest.raises(ConfigError, match="training.sparsity"):
        runner.train(runner.resolve_config(bad), tmp_path / "bad", verbose=0)
    bad = {**cfg, "training": {**cfg["training"], "sparsity": {"target": 2.0}}}
    with pytest.raises(ConfigError, match="training.sparsity"):
        runner.train(runner.resolve_config(bad), tmp_path / "bad2", verbose=0)
