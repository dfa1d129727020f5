"""Trajectory AIS (log Z along training) against exact enumeration, a full AIS, resumes and bad input."""

import math

import numpy as np
import pytest
import torch
from conftest import random_rbm
from trajectory_helpers import prototype_data, whole_and_resumed

from natural_bm import DBM, RBM, SGD
from natural_bm.callbacks import LambdaCallback, TrajectoryAISCallback
from natural_bm.estimators import AIS, TrajectoryAIS, log_likelihood, log_partition_exact
from natural_bm.estimators.trajectory import systematic_resample


def _exact_each_epoch(store):
    return LambdaCallback(on_epoch_end=lambda epoch, logs: store.append(log_partition_exact(store.model,
                                                                                            progress=False)))


class _Exact(list):
    def __init__(self, model):
        super().__init__()
        self.model = model


@pytest.mark.parametrize("algorithm,kw", [("exact", {}), ("pcd", {"n_chains": 100, "k": 1})])
def test_every_epoch_of_a_small_rbm_training_within_0_1_nats_of_exact(algorithm, kw):
    """12x8 RBM, 20 epochs (momentum 0.9, log Z moves by 5 nats): the trajectory's log Z of every epoch is
    within 0.1 nats of the enumerated one (measured: at most 0.035), and its training log-likelihood is the
    exact one's within as much; log Z moves by more than 3 nats, so a trajectory that stood still would fail."""
    x = prototype_data()

    m = RBM(12, 8, seed=0, dtype=torch.float64).init_from_data(x).compile(SGD(0.1, momentum=0.9), algorithm, **kw)
    exact = _Exact(m)
    cb = TrajectoryAISCallback(n_chains=1000, seed=0, anchor="base", reanchor_every=0)
    h = m.fit(x, batch_size=50, epochs=20, verbose=0, seed=0, callbacks=[cb, _exact_each_epoch(exact)]).history
    exact = np.array(exact)
    dev = np.array(h["logZ_trajectory"]) - exact
    assert np.abs(dev).max() < 0.1, dev
    assert exact.max() - exact.min() > 3  # the model moved: log Z is not a constant
    ll_exact = log_likelihood(m, x, exact[-1])[0]
    assert abs(h["train_ll_trajectory"][-1] - ll_exact) < 0.1
    assert all(s >= 10 for s in h["steps_trajectory"]) and all(1 <= e <= 1000 for e in h["ess_trajectory"])


def test_dbm_trajectory_matches_exact_enumeration_on_both_parities():
    """A 10-6-4 DBM trained 8 epochs with mean-field and persistent chains: the trajectory on the odd
    parity (h1 annealed, v and h2 summed out; the default) and on the even one is within 0.1 nats of the
    exact log Z at every epoch."""
    x = prototype_data(10, 600, seed=1)
    for parity in ("auto", 0):
        m = DBM([10, 6, 4], seed=0, dtype=torch.float64, weight_scale=0.1).compile(
            SGD(0.1, momentum=0.5), "mfpcd", n_chains=50, k=2)
        exact = _Exact(m)
        cb = TrajectoryAISCallback(n_chains=1000, seed=1, parity=parity, anchor="base", reanchor_every=0)
        h = m.fit(x, batch_size=50, epochs=8, verbose=0, seed=0, callbacks=[cb, _exact_each_epoch(exact)]).history
        dev = np.array(h["logZ_trajectory"]) - np.array(exact)
        assert np.abs(dev).max() < 0.1, (parity, dev)
        assert max(exact) - min(exact) > 0.5
    assert cb.estimator.parity == 0 and TrajectoryAIS(m).parity == 1


@pytest.mark.slow
@pytest.mark.mnist
def test_mnist_rbm_trajectory_lands_in_the_band_of_a_full_ais(mnist_dir):
    """784x50 RBM, PCD-1, 3 epochs on 5,000 MNIST images (log Z rises by 12 nats): at the end the trajectory's
    log Z lies within the +-3 sigma band of a 100-run, 14,501-beta AIS (measured: 173.26 against
    173.29 [173.19, 173.37]; 50,000- and 200,000-beta AIS gave 173.31 and 173.30)."""
    from natural_bm.datasets import load_mnist

    d = load_mnist("sampled", path=mnist_dir, n_train=5000, n_valid=0, download=False)
    m = RBM(784, 50, seed=0).init_from_data(d.train).compile(SGD(0.05, momentum=0.5), "pcd", n_chains=100, k=1)
    cb = TrajectoryAISCallback(seed=0, anchor="base", max_steps=2000, reanchor_every=0)
    h = m.fit(d.train, batch_size=100, epochs=3, verbose=0, seed=0, callbacks=[cb]).history
    _, lo, hi = AIS(m, data=d.train, n_runs=100, seed=0, progress=False).estimate_log_error_Z()
    assert lo <= h["logZ_trajectory"][-1] <= hi, (h["logZ_trajectory"], lo, hi)
    assert h["logZ_trajectory"][-1] - h["logZ_trajectory"][0] > 5


def test_resumed_run_continues_bit_identically(tmp_path):
    """Killed after epoch 1 and resumed from the checkpoint, the run logs the uninterrupted run's trajectory
    values bit for bit, and its chains and weights end the same."""
    x = prototype_data(9, 400, seed=2)

    def make():
        m = RBM(9, 6, seed=0).init_from_data(x)
        return m.compile(SGD(0.1, momentum=0.5), "pcd", n_chains=20, k=1)

    def cbs():
        return TrajectoryAISCallback(n_chains=50, seed=3, reanchor_every=2, ais_runs=20, ais_betas=200,
                                     anchor="exact", every=2)

    h_full, full_cb, h, resumed_cb = whole_and_resumed(make, cbs, x, 4, tmp_path)
    keys = resumed_cb.keys()
    assert {"logZ_trajectory", "val_ll_trajectory", "logZ_drift", "ess_trajectory"} <= set(keys)
    for k in keys:
        np.testing.assert_array_equal(h[k], h_full[k][2:], err_msg=k)
    assert not math.isnan(h_full["logZ_drift"][1]) and math.isnan(h_full["logZ_drift"][0])
    assert math.isnan(h_full["train_ll_trajectory"][0]) and not math.isnan(h_full["train_ll_trajectory"][1])
    a, b = full_cb.estimator, resumed_cb.estimator
    assert torch.equal(a.log_w, b.log_w) and all(torch.equal(u, v) for u, v in zip(a.chains[:1], b.chains[:1],
                                                                                      strict=True))


def test_reanchoring_takes_the_full_ais_level_and_logs_the_drift():
    """With reanchor_every=1 each epoch's log Z is the full AIS's (seed + epoch), and the drift is the
    trajectory's own estimate minus it; on a 12x8 model both are close to exact."""
    x = prototype_data()
    m = RBM(12, 8, seed=0, dtype=torch.float64).init_from_data(x).compile(SGD(0.1, momentum=0.5), "exact")
    cb = TrajectoryAISCallback(n_chains=200, seed=0, reanchor_every=1, ais_runs=50, ais_betas=2000)
    exact = _Exact(m)
    h = m.fit(x, batch_size=50, epochs=3, verbose=0, seed=0, callbacks=[cb, _exact_each_epoch(exact)]).history
    ais = AIS(m, data=x, n_runs=50, n_betas=2000, seed=2, progress=False).run_logZ()
    assert h["logZ_trajectory"][-1] == pytest.approx(ais, abs=1e-12)
    assert np.abs(np.array(h["logZ_trajectory"]) - np.array(exact)).max() < 0.05
    assert np.abs(np.array(h["logZ_drift"])).max() < 0.1


def test_a_collapsed_genealogy_is_logged_and_warned_about():
    """Moves of 3 unadapted steps spread the weights of 20 own chains, so each move resamples them: within
    10 epochs they descend from 2 or fewer of their starting chains, ancestors_trajectory logs it (never
    rising without a restart) and a RuntimeWarning says so once."""
    x = prototype_data()
    m = RBM(12, 8, seed=0, dtype=torch.float64).init_from_data(x).compile(SGD(0.1, momentum=0.9), "pcd",
                                                                            n_chains=100, k=1)
    cb = TrajectoryAISCallback(n_chains=20, seed=0, anchor="base", reanchor_every=0, n_steps=3, max_steps=3,
                               target_variance=None)
    with pytest.warns(RuntimeWarning, match="descend from") as record:
        h = m.fit(x, batch_size=50, epochs=10, verbose=0, seed=0, callbacks=[cb]).history
    assert sum("descend from" in str(w.message) for w in record) == 1
    anc = h["ancestors_trajectory"]
    assert anc[-1] <= 2 and all(a >= b for a, b in zip(anc[:-1], anc[1:], strict=True))
    assert anc[-1] == cb.estimator.ancestors
    assert int(torch.unique(cb.estimator.ancestor).numel()) == cb.estimator.ancestors


def test_estimator_start_is_exact_for_independent_units_and_warns_on_a_large_move():
    """A model with zero weights starts at its closed-form log Z; a jump to random strong weights in one
    unadapted step leaves a few chains carrying the weights, which warns as AIS does."""
    m = random_rbm(8, 5, scale=0.0)
    with torch.no_grad():
        m.vbias.copy_(torch.linspace(-2, 2, 8, dtype=torch.float64))
        m.hbias.fill_(0.5)
    t = TrajectoryAIS(m, n_chains=200, seed=0)
    assert t.start() == pytest.approx(log_partition_exact(m, progress=False), abs=1e-12)
    with torch.no_grad():
        m.W.copy_(random_rbm(8, 5, scale=3.0, seed=1).W)
    jump = TrajectoryAIS(m, n_chains=200, seed=0, n_steps=1, max_steps=1, target_variance=None, resample_below=0)
    jump.start(params={k: torch.zeros_like(p) if k == "W" else p for k, p in m.parameter_dict().items()})
    with pytest.warns(RuntimeWarning, match="effective chains"):
        jump.advance()
    assert jump.ess < 10


def test_systematic_resampling_takes_each_chain_floor_or_ceil_of_n_w_times():
    w = torch.tensor([0.05, 0.5, 0.0, 0.25, 0.2], dtype=torch.float64)
    for u in (0.0, 0.3, 0.999):
        counts = torch.bincount(systematic_resample(torch.log(w), u), minlength=5)
        assert int(counts.sum()) == 5 and int(counts[2]) == 0
        assert bool(((counts >= torch.floor(5 * w)) & (counts <= torch.ceil(5 * w))).all()), counts


def test_bad_arguments_name_the_argument():
    m = random_rbm()
    for kw, name in [({"n_chains": 1}, "n_chains"), ({"n_steps": 0}, "n_steps"),
                     ({"n_steps": 20, "max_steps": 10}, "max_steps"), ({"target_variance": -1.0}, "target_variance"),
                     ({"target_variance": "big"}, "target_variance"), ({"resample_below": 2.0}, "resample_below"),
                     ({"parity": 3}, "parity"), ({"start_steps": 0}, "start_steps")]:
        with pytest.raises(ValueError, match=name):
            TrajectoryAIS(m, **kw)
    t = TrajectoryAIS(m, seed=0)
    with pytest.raises(RuntimeError, match="start"):
        t.advance()
    t.start()
    with pytest.raises(ValueError, match="log_z"):
        t.reanchor(math.nan)
    other = TrajectoryAIS(m, n_chains=50)
    with pytest.raises(ValueError, match="chains"):
        other.load_state_dict(t.state_dict())
    for kw, name in [({"anchor": "guess"}, "anchor"), ({"every": 0}, "every"), ({"reanchor_every": -1},
                     "reanchor_every"), ({"ais_betas": 1}, "ais_betas"), ({"chains": "both"}, "chains")]:
        with pytest.raises(ValueError, match=name):
            TrajectoryAISCallback(**kw)
    with torch.no_grad():
        m.W[0, 0] = math.nan
    with pytest.raises(ValueError, match="finite"):
        t.advance()
