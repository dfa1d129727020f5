"""Optimisers against numpy reference updates; state save/restore."""

import numpy as np
import pytest
import torch

from natural_bm.training import SGD, Adam, get_optimizer


def _grads(t, shape=(3, 2)):
    return np.random.default_rng(t).normal(size=shape)


def _run(opt, steps, p0):
    p = {"W": torch.tensor(p0.copy())}
    for t in range(steps):
        opt.step(p, {"W": torch.tensor(_grads(t))})
    return p["W"].numpy()


@pytest.mark.parametrize(
    "momentum,nesterov,decay", [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.01), (0.5, False, 0.1)]
)
def test_sgd_matches_reference(momentum, nesterov, decay):
    p0 = np.zeros((3, 2))
    lr = 0.1
    p, v = p0.copy(), np.zeros_like(p0)
    for t in range(6):
        lr_t = lr / (1 + decay * t)
        g = _grads(t)
        v = momentum * v + lr_t * g
        p = p + (momentum * v + lr_t * g if nesterov else v)
    ours = _run(SGD(lr, momentum, nesterov, decay), 6, p0)
    np.testing.assert_allclose(ours, p, atol=1e-12)


def test_sgd_momentum_advances_with_zero_decay():
    """natural_bm (2017) never advanced momentum when decay was 0."""
    opt = SGD(lr=1.0, momentum=0.5)
    p = {"W": torch.zeros(1, dtype=torch.float64)}
    for _ in range(3):
        opt.step(p, {"W": torch.ones(1, dtype=torch.float64)})
    assert p["W"].item() == pytest.approx(1 + 1.5 + 1.75)


def test_adam_matches_reference():
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    p, m, v = np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2))
    for t in range(1, 8):
        g = _grads(t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        # Keras form: eps added to sqrt(v), bias corrections folded into the step
        p = p + lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    ours = _run(Adam(lr, b1, b2, eps), 7, np.zeros((3, 2)))
    np.testing.assert_allclose(ours, p, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("make", [lambda: SGD(0.05, 0.9, True, 0.01), lambda: Adam(0.01)])
def test_state_dict_round_trip_continues_identically(make):
    p0 = np.zeros((3, 2))
    full = _run(make(), 10, p0)
    opt = make()
    p = {"W": torch.tensor(p0.copy())}
    for t in range(4):
        opt.step(p, {"W": torch.tensor(_grads(t))})
    state = opt.state_dict()
    opt2 = make()
    opt2.lr = 123.0  # overwritten by load_state_dict
    opt2.load_state_dict(state)
    for t in range(4, 10):
        opt2.step(p, {"W": torch.tensor(_grads(t))})
    np.testing.assert_array_equal(p["W"].numpy(), full)


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="momentum"):
        SGD(momentum=1.5)
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("rmsprop-ish")
    with pytest.raises(ValueError, match="Adam"):
        Adam().load_state_dict(SGD().state_dict())


def test_param_groups_lr_factor_works_under_adam_and_sgd():
    """The reproduced bug: a layer-wise lr_factor of 3 changed nothing under Adam (it scaled the gradient)."""
    from natural_bm import DBM
    from natural_bm.callbacks import ScheduledLayerwise

    x = (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.float32)
    for make in (lambda: Adam(0.01), lambda: SGD(0.1, momentum=0.5)):
        def run(cb):
            d = DBM([6, 4, 3], seed=0).compile(make(), "mfpcd", n_chains=10, k=1, mf_steps=2)  # noqa: B023
            w0 = d.W_0_1.clone()
            d.fit(x, batch_size=40, epochs=1, callbacks=[cb] if cb else None, verbose=0, seed=0)
            return d.W_0_1 - w0

        base = run(None)
        scaled = run(ScheduledLayerwise(schedule=[(0, 1)], bottom_up=False, lr_factor=3.0))
        torch.testing.assert_close(scaled, 3 * base, rtol=1e-5, atol=1e-8)


def test_param_groups_decay_freeze_and_save():
    opt = SGD(0.5)
    opt.set_param_groups([{"params": ["W"], "l2": 0.1, "lr": 0.2}, {"params": ["b"], "frozen": True}])
    p = {"W": torch.ones(2, dtype=torch.float64), "b": torch.zeros(2, dtype=torch.float64)}
    opt.step(p, {"W": torch.zeros(2, dtype=torch.float64), "b": torch.ones(2, dtype=torch.float64)})
    torch.testing.assert_close(p["W"], torch.full((2,), 1 - 0.2 * 0.1, dtype=torch.float64))  # decay only
    assert torch.equal(p["b"], torch.zeros(2, dtype=torch.float64))  # frozen
    restored = SGD()
    restored.load_state_dict(opt.state_dict())
    assert restored.param_groups == opt.param_groups and restored.group_of("W")["lr"] == 0.2
    with pytest.raises(ValueError, match="more than one group"):
        opt.set_param_groups([{"params": ["W"]}, {"params": ["W", "b"]}])
    with pytest.raises(ValueError, match="may set"):
        opt.set_param_groups([{"params": ["W"], "momentum": 0.3}])
