"""Training with class labels clamped on a softmax label layer (Larochelle & Bengio's classification RBM)."""

import numpy as np
import pytest
import torch
from conftest import randomize

from natural_bm import DBM, SGD
from natural_bm.rng import RandomSource
from natural_bm.validation import as_label_tensor


def _class_rbm(n_pixels=6, n_hidden=4, n_classes=3, seed=0):
    return randomize(DBM([n_pixels, n_hidden, n_classes], units=["bernoulli", "bernoulli", "softmax"],
                         dtype=torch.float64), scale=0.5, seed=seed)


def test_clamped_mean_field_is_the_exact_posterior_given_image_and_label():
    d = _class_rbm()
    v = (torch.rand(5, 6, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    y = as_label_tensor([0, 2, 1, 1, 0], "y", 5, 3, dtype=torch.float64)
    mu, _ = d.mean_field(v, clamp={2: y})
    W01, W12, b1 = (t.numpy() for t in (d.weight(0, 1), d.weight(1, 2), d.bias(1)))
    expected = 1 / (1 + np.exp(-(v.numpy() @ W01 + y.numpy() @ W12.T + b1)))
    np.testing.assert_allclose(mu[1].numpy(), expected, rtol=0, atol=1e-12)
    assert torch.equal(mu[2], y)


def test_labelled_step_uses_clamped_positive_statistics():
    """grads = <stats>_{v, p(h | v, y), y} - <stats>_chains, with the chains as the step left them."""
    d = _class_rbm().compile(SGD(0.1), "mfpcd", n_chains=7, k=2, mf_steps=5)
    v = (torch.rand(5, 6, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    y = as_label_tensor([1, 1, 0, 2, 2], "y", 5, 3, dtype=torch.float64)
    gen = RandomSource(0)
    alg = d.trainer.algorithm
    grads, _, state = alg.step(d, v, alg.init(d, v, gen), gen, {2: y})
    W01, W12, b1 = (t.numpy() for t in (d.weight(0, 1), d.weight(1, 2), d.bias(1)))
    vn, yn = v.numpy(), y.numpy()
    h = 1 / (1 + np.exp(-(vn @ W01 + yn @ W12.T + b1)))
    c0, c1, c2 = (t.numpy() for t in state.chains)
    np.testing.assert_allclose(grads["W_0_1"].numpy(), vn.T @ h / 5 - c0.T @ c1 / 7, atol=1e-12)
    np.testing.assert_allclose(grads["W_1_2"].numpy(), h.T @ yn / 5 - c1.T @ c2 / 7, atol=1e-12)
    np.testing.assert_allclose(grads["b_2"].numpy(), yn.mean(0) - c2.mean(0), atol=1e-12)
    assert np.allclose(c2.sum(1), 1) and set(np.unique(c2)) <= {0.0, 1.0}  # label chains stay one-hot


def test_classification_rbm_learns_labels_and_logs_validation_accuracy():
    rng = np.random.default_rng(0)
    prototypes = np.array([[1, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1, 1]])

    def draw(n):
        labels = rng.integers(0, 3, n)
        flip = rng.random((n, 9)) < 0.1
        return np.abs(prototypes[labels] - flip).astype(np.float32), labels

    x, y = draw(300)
    x_val, y_val = draw(100)
    d = DBM([9, 8, 3], units=["bernoulli", "bernoulli", "softmax"], seed=0)
    d.compile(SGD(0.05, momentum=0.5), "mfpcd", n_chains=20, k=1, mf_steps=5)
    hist = d.fit(x, batch_size=20, epochs=30, validation_data=(x_val, y_val), y=y, verbose=0, seed=0)
    acc = hist.history["val_accuracy"]
    assert acc[-1] >= 0.9 and acc[-1] > acc[0]
    assert float((d.predict(x_val) == torch.as_tensor(y_val)).double().mean()) == pytest.approx(acc[-1])
    # the same model trained without labels knows nothing of them: about chance
    blind = DBM([9, 8, 3], units=["bernoulli", "bernoulli", "softmax"], seed=0)
    blind.compile(SGD(0.05, momentum=0.5), "mfpcd", n_chains=20, k=1, mf_steps=5)
    blind.fit(x, batch_size=20, epochs=30, verbose=0, seed=0)
    assert float((blind.predict(x_val) == torch.as_tensor(y_val)).double().mean()) < 0.6


def test_label_errors_name_the_argument():
    x = np.zeros((4, 6), np.float32)
    d = DBM([6, 4, 3], units=["bernoulli", "bernoulli", "softmax"], seed=0).compile("sgd", "mfpcd", n_chains=2)
    with pytest.raises(ValueError, match="`y` has 3 rows"):
        d.fit(x, y=[0, 1, 2], verbose=0)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        d.fit(x, y=[0, 1, 2, 3], verbose=0)
    with pytest.raises(ValueError, match="single 1"):
        d.fit(x, y=np.full((4, 3), 1 / 3), verbose=0)
    with pytest.raises(ValueError, match="whole numbers"):
        d.fit(x, y=[0, 1.5, 2, 0], verbose=0)
    plain = DBM([6, 4, 3], seed=0).compile("sgd", "mfpcd", n_chains=2)
    with pytest.raises(ValueError, match="softmax units in one group"):
        plain.fit(x, y=[0, 1, 2, 0], verbose=0)
    from natural_bm import RBM

    with pytest.raises(ValueError, match="softmax units in one group"):
        RBM(6, 3).compile("sgd", "cd").fit(x, y=[0, 1, 2, 0], verbose=0)


def test_free_energy_sums_a_softmax_label_layer_over_its_one_hot_states_only():
    """F(v) of [pixels, hidden, labels] against numpy brute force over (h, one-hot y); summing binary codes
    of the label layer instead (the earlier bug) gives log Z 0.89 nats too high here."""
    import itertools

    from natural_bm.estimators import log_partition_exact

    d = _class_rbm(n_pixels=4, n_hidden=3, n_classes=3, seed=0)
    W01, W12 = d.weight(0, 1).numpy(), d.weight(1, 2).numpy()
    b0, b1, b2 = (b.numpy() for b in d.biases)
    v = np.array(list(itertools.product([0.0, 1.0], repeat=4)))
    h = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    y = np.eye(3)
    neg_e = (v @ W01 @ h.T)[:, :, None] + (h @ W12 @ y.T)[None] + (v @ b0)[:, None, None] \
        + (h @ b1)[None, :, None] + (y @ b2)[None, None]
    expected = -np.logaddexp.reduce(neg_e.reshape(16, -1), axis=1)
    np.testing.assert_allclose(d.free_energy(torch.from_numpy(v)).numpy(), expected, rtol=0, atol=1e-10)
    assert log_partition_exact(d) == pytest.approx(np.logaddexp.reduce(neg_e.ravel()), abs=1e-10)


def test_runner_trains_with_labels_and_reports_test_accuracy(tmp_path):
    """data.labels: the digits' labels clamped on a softmax layer; results' test_accuracy against p(y | v)
    written out in numpy from the saved model."""
    from natural_bm import run as runner
    from natural_bm.datasets import load_digits

    cfg = runner.resolve_config({
        "model": {"type": "dbm", "layer_sizes": [64, 30, 10], "units": ["bernoulli", "bernoulli", "softmax"]},
        "data": {"name": "digits", "kind": "sampled", "eval_kind": "sampled", "labels": True},
        "training": {"epochs": 15, "batch_size": 20, "n_chains": 20, "mf_steps": 3},
        "optimizer": {"lr": 0.05, "momentum": 0.5}, "ais": {"n_runs": 10, "n_betas": 100},
        "samples": {"plot_every": 1000}, "seed": 0})
    results = runner.train(cfg, tmp_path / "run", verbose=0)
    d = DBM.load(tmp_path / "run" / "model.pt", dtype=torch.float64)
    W01, W12 = d.weight(0, 1).numpy(), d.weight(1, 2).numpy()
    c, b2 = d.bias(1).numpy(), d.bias(2).numpy()
    data = load_digits("sampled", 0)
    a = data.test @ W01 + c  # (n, 30)
    log_joint = b2 + np.logaddexp(0, a[:, :, None] + W12[None]).sum(1)  # (n, 10), up to a per-row constant
    accuracy = float((log_joint.argmax(1) == data.test_labels).mean())
    assert results["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert accuracy > 0.6  # chance is 0.1
    log = __import__("pandas").read_csv(tmp_path / "run" / "log.csv")
    assert log["val_accuracy"].iloc[-1] > 0.6


def test_runner_refuses_labels_it_cannot_use(tmp_path):
    from natural_bm import run as runner
    from natural_bm.run import ConfigError

    base = {"data": {"name": "bars_and_stripes", "labels": True}, "model": {"type": "rbm", "n_hidden": 4}}
    with pytest.raises(ConfigError, match="has no labels"):
        runner.train(runner.resolve_config(base), tmp_path / "a", verbose=0)
    digits = {"data": {"name": "digits", "kind": "probability", "labels": True},
              "model": {"type": "rbm", "n_hidden": 4}}
    with pytest.raises(ConfigError, match="data.labels: layer 1 must hold softmax units"):
        runner.train(runner.resolve_config(digits), tmp_path / "b", verbose=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_gibbs_sampler_checks_its_clamped_layers():
    from natural_bm.sampling import GibbsSampler

    d = DBM([6, 4, 3], units=["bernoulli", "bernoulli", "softmax"], seed=0)
    y = np.eye(3)[[0, 1, 2, 0]]
    with pytest.raises(ValueError, match="hidden layer indices 1..2"):
        GibbsSampler(d, clamp={0: np.zeros((4, 6))})
    with pytest.raises(ValueError, match="has 2 columns|expected 3|3 columns"):
        GibbsSampler(d, clamp={2: y[:, :2]})
    with pytest.raises(ValueError, match="one-hot rows"):
        GibbsSampler(d, clamp={2: np.full((4, 3), 1 / 3)})
    with pytest.raises(ValueError, match="NaN|finite"):
        GibbsSampler(d, clamp={2: np.full((4, 3), np.nan)})
    sampler = GibbsSampler(d, clamp={2: y})
    with pytest.raises(ValueError, match="4 rows but there are 5 chains"):
        sampler.init_chains(torch.zeros(5, 6))
    chains = sampler.run(sampler.init_chains(torch.zeros(4, 6)), 3, RandomSource(0))
    assert torch.equal(chains[2], torch.as_tensor(y, dtype=torch.float32))  # held fixed
