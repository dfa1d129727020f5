"""Training features of the published recipes: per-minibatch binarisation, k and lr/momentum schedules."""

import math

import numpy as np
import pytest
import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import GibbsStepsScheduler, PeriodicSave, load_training_state
from natural_bm.run import ConfigError, steps_of
from natural_bm.training import ContrastiveDivergence

X = np.random.default_rng(1).random((50, 12)).astype(np.float32)  # grey levels in [0, 1)


class Recording(ContrastiveDivergence):
    """CD-1 that keeps every batch it is given."""

    def __init__(self):
        super().__init__(1)
        self.batches = []

    def step(self, model, v, state, generator, clamp=None):
        self.batches.append(v.clone())
        return super().step(model, v, state, generator, clamp)


def _fit(epochs=2, binarize=True, seed=0, initial_epoch=0, model=None, callbacks=None):
    model = model or RBM(12, 4, seed=0).compile(SGD(0.1, momentum=0.5), Recording())
    model.fit(X, batch_size=10, epochs=epochs, verbose=0, seed=seed, binarize=binarize, shuffle=False,
              initial_epoch=initial_epoch, callbacks=callbacks)
    return model


def test_binarize_draws_a_fresh_binary_sample_of_every_minibatch():
    m = _fit(epochs=40)
    batches = torch.stack(m.trainer.algorithm.batches)  # (200 batches, 10, 12), unshuffled: batch b of every epoch
    assert set(torch.unique(batches).tolist()) == {0.0, 1.0}
    per_row = batches.reshape(40, 5, 10, 12).reshape(40, 50, 12)  # epoch, row, unit
    assert not torch.equal(per_row[0], per_row[1])  # redrawn every epoch
    # over 40 epochs each pixel's frequency estimates its grey level: |mean - x| within 5 standard errors
    se = np.sqrt(X * (1 - X) / 40) + 1e-3
    assert np.all(np.abs(per_row.mean(0).numpy() - X) < 5 * se)


def test_binarize_is_reproducible_and_resumes_bit_identically(tmp_path):
    a, b = _fit(epochs=4), _fit(epochs=4)
    assert torch.equal(a.W, b.W)
    assert not torch.equal(a.W, _fit(epochs=4, binarize=False).W)
    part = _fit(epochs=2, callbacks=[PeriodicSave(tmp_path / "w.pt", opt_path=tmp_path / "s.pt")])
    resumed = RBM(12, 4, seed=0).compile(SGD(0.1, momentum=0.5), Recording())
    resumed.load_weights(tmp_path / "w_epoch0001.pt")
    load_training_state(resumed, tmp_path / "s_epoch0001.pt")
    _fit(epochs=4, initial_epoch=2, model=resumed)
    assert not torch.equal(part.W, a.W) and torch.equal(resumed.W, a.W)


def test_gibbs_steps_schedule_equals_changing_k_by_hand():
    scheduled = RBM(12, 4, seed=0).compile(SGD(0.1, momentum=0.5), "cd", k=1)
    hist = scheduled.fit(X, batch_size=10, epochs=3, verbose=0, seed=2,
                         callbacks=[GibbsStepsScheduler(lambda epoch: epoch + 1)])
    assert hist.history["k"] == [1.0, 2.0, 3.0] and scheduled.trainer.algorithm.k == 3
    by_hand = RBM(12, 4, seed=0).compile(SGD(0.1, momentum=0.5), "cd", k=1)
    for epoch in range(3):
        by_hand.trainer.algorithm.k = epoch + 1
        by_hand.fit(X, batch_size=10, epochs=epoch + 1, initial_epoch=epoch, verbose=0, seed=2)
    assert torch.equal(scheduled.W, by_hand.W)
    with pytest.raises(ValueError, match="k must be >= 1"):
        scheduled.fit(X, epochs=1, verbose=0, callbacks=[GibbsStepsScheduler(lambda epoch: 0)])


def test_exponential_decay_per_update():
    opt = SGD(0.1, decay=0.5, decay_mode="exponential")
    p, g = {"W": torch.zeros(1, dtype=torch.float64)}, {"W": torch.ones(1, dtype=torch.float64)}
    for _ in range(3):
        opt.step(p, {"W": g["W"].clone()})
    assert p["W"].item() == pytest.approx(0.1 * (1 + 1 / 1.5 + 1 / 1.5**2), rel=1e-12)
    inverse = SGD(0.1, decay=0.5)
    inverse.iterations = 2
    assert inverse.current_lr() == pytest.approx(0.1 / 2.0)
    with pytest.raises(ValueError, match="decay_mode"):
        SGD(0.1, decay_mode="cosine")


def test_config_ramps():
    k = steps_of({"from": 1, "to": 25, "every": 4}, "schedule.k")
    assert [k(e) for e in (0, 3, 4, 95, 96, 500)] == [1, 1, 2, 24, 25, 25]
    down = steps_of({"from": 5, "to": 1, "every": 2}, "schedule.k")
    assert [down(e) for e in (0, 2, 8, 100)] == [5, 4, 1, 1]
    m = steps_of({"from": 0.5, "to": 0.9, "over": 8, "shape": "geometric"}, "schedule.momentum")
    assert m(0) == pytest.approx(0.5) and m(8) == m(100) == pytest.approx(0.9)
    assert m(4) == pytest.approx(math.sqrt(0.5 * 0.9))
    lin = steps_of({"from": 1e-3, "to": 1e-5, "over": 200}, "schedule.lr")
    assert lin(100) == pytest.approx((1e-3 + 1e-5) / 2)
    with pytest.raises(ConfigError, match="geometric ramp needs from and to > 0"):
        steps_of({"from": 0, "to": 1, "over": 3, "shape": "geometric"}, "schedule.lr")
    with pytest.raises(ConfigError, match="schedule.k as a ramp must have the keys"):
        steps_of({"from": 1, "to": 3}, "schedule.k")
