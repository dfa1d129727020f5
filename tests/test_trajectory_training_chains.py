"""Trajectory AIS carried by the training's persistent chains (``TrajectoryAISCallback(chains="training")``,
``TrainingChainsAIS``): against exact enumeration, its documented bias, bit-identical training and resumes."""

import math

import numpy as np
import pytest
import torch
from trajectory_helpers import prototype_data, whole_and_resumed

from natural_bm import DBM, RBM, SGD
from natural_bm.callbacks import LambdaCallback, TrajectoryAISCallback
from natural_bm.estimators import log_partition_exact
from natural_bm.estimators.trajectory import TrainingChainsAIS


def _train_with_exact(model, x, callback, epochs=20, batch_size=50, extra=()):
    exact = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: exact.append(log_partition_exact(model, progress=False)))
    h = model.fit(x, batch_size=batch_size, epochs=epochs, verbose=0, seed=0,
                  callbacks=[callback, *extra, record]).history
    return h, np.array(exact)


def test_every_epoch_of_a_small_rbm_training_within_0_1_nats_of_exact():
    """12x8 RBM, PCD-1 with 5,000 chains, lr 0.05, momentum 0.5, 20 epochs (400 updates; log Z moves by 1.5
    nats): the training chains' log Z of every epoch is within 0.1 nats of the enumerated one (measured: at
    most 0.031), and so is the first epoch's level (the exact anchor); a trajectory that stood still would
    fail."""
    x = prototype_data()
    m = RBM(12, 8, seed=0, dtype=torch.float64).init_from_data(x).compile(SGD(0.05, momentum=0.5), "pcd",
                                                                            n_chains=5000, k=1)
    cb = TrajectoryAISCallback(chains="training", reanchor_every=0, seed=0)
    h, exact = _train_with_exact(m, x, cb)
    dev = np.array(h["logZ_trajectory"]) - exact
    assert np.abs(dev).max() < 0.1, dev
    assert exact.max() - exact.min() > 1.0
    assert h["steps_trajectory"][0] == 0 and all(s == 20 for s in h["steps_trajectory"][1:])  # updates per epoch
    assert all(e > 1000 for e in h["ess_trajectory"][1:]) and math.isnan(h["ess_trajectory"][0])
    assert all(math.isnan(a) for a in h["ancestors_trajectory"])


def test_dbm_mean_field_pcd_chains_on_both_parities_within_0_1_nats_of_exact():
    """A 10-6-4 DBM trained 8 epochs with mean-field PCD (5,000 chains, one state per layer): the training
    chains' log Z on the odd parity (h1 annealed, v and h2 summed out) and on the even one is within 0.1
    nats of exact at every epoch (measured: at most 0.011), while log Z moves by a nat."""
    x = prototype_data(10, 600, seed=1)
    for parity in ("auto", 0):
        m = DBM([10, 6, 4], seed=0, dtype=torch.float64, weight_scale=0.1).compile(SGD(0.05, momentum=0.5),
                                                                                  "mfpcd", n_chains=5000, k=1)
        cb = TrajectoryAISCallback(chains="training", reanchor_every=0, parity=parity)
        h, exact = _train_with_exact(m, x, cb, epochs=8)
        dev = np.array(h["logZ_trajectory"]) - exact
        assert np.abs(dev).max() < 0.1, (parity, dev)
        assert exact.max() - exact.min() > 0.5
        assert cb.training.parity == (1 if parity == "auto" else 0)


def test_few_chains_and_large_steps_err_low_and_warn():
    """The documented failure: with 100 chains at lr 0.1 the steps depend on the chains that weigh them
    (the negative phase lowers log p* where they are) and the weights spread; log Z comes out more than a
    nat low within 20 epochs, and a RuntimeWarning names the effective chains."""
    x = prototype_data()
    m = RBM(12, 8, seed=0, dtype=torch.float64).init_from_data(x).compile(SGD(0.1, momentum=0.5), "pcd",
                                                                            n_chains=100, k=1)
    cb = TrajectoryAISCallback(chains="training", reanchor_every=0, seed=0)
    with pytest.warns(RuntimeWarning, match="effective training chains"):
        h, exact = _train_with_exact(m, x, cb)
    assert h["logZ_trajectory"][-1] - exact[-1] < -1.0


def test_a_parameter_change_between_epochs_is_weighed():
    """Another callback adds 0.3 to every visible bias at each epoch end (log Z jumps by about 2 nats
    each time): the change, seen at the next epoch's start, adds its own increment, and the trajectory stays
    within 0.1 nats of exact; without it, it would be off by the jumps."""
    x = prototype_data()
    m = RBM(12, 8, seed=0, dtype=torch.float64).init_from_data(x).compile(SGD(0.05, momentum=0.5), "pcd",
                                                                            n_chains=5000, k=1)

    def scale(epoch, logs):
        with torch.no_grad():
            m.vbias.add_(0.3)

    cb = TrajectoryAISCallback(chains="training", reanchor_every=0, seed=0)
    exact = []  # at each epoch end before the scaling (the callbacks' order: the trajectory, this, the scaling)
    h = m.fit(x, batch_size=50, epochs=8, verbose=0, seed=0, callbacks=[
        cb, LambdaCallback(on_epoch_end=lambda e, logs: exact.append(log_partition_exact(m, progress=False))),
        LambdaCallback(on_epoch_end=scale)]).history
    dev = np.array(h["logZ_trajectory"]) - np.array(exact)
    assert np.abs(dev).max() < 0.1, dev
    scaled = log_partition_exact(m, progress=False)
    assert scaled - exact[-1] > 1.0, scaled - exact[-1]  # one jump
    cb.training.advance(m.trainer.model_chains())  # the last scaling, weighed now
    assert abs(cb.training.logZ - scaled) < 0.1


def test_training_is_bit_identical_with_and_without_the_callback():
    """The callback reads the chains and parameters and computes on float64 copies with no random numbers
    of the training's: the weights and persistent chains after 3 epochs are bit-identical with the
    training-chain callback (re-anchored each epoch by AIS), with the own-chain one, and without any."""
    x = prototype_data(10, 400, seed=3)

    def train(callbacks):
        m = RBM(10, 6, seed=1).init_from_data(x).compile(SGD(0.1, momentum=0.9), "pcd", n_chains=50, k=1)
        m.fit(x, batch_size=40, epochs=3, verbose=0, seed=5, binarize=True, validation_data=x[:50],
              callbacks=callbacks)
        return m

    plain = train([])
    for cb in (TrajectoryAISCallback(chains="training", ais_runs=10, ais_betas=100),
               TrajectoryAISCallback(chains="own", n_chains=20, ais_runs=10, ais_betas=100, max_steps=50)):
        other = train([cb])
        for name, p in plain.parameter_dict().items():
            assert torch.equal(p, getattr(other, name)), (cb.chains, name)
        assert torch.equal(plain.trainer.model_chains(), other.trainer.model_chains())
        assert len(cb.results) == 3


def test_resumed_run_continues_bit_identically(tmp_path):
    """Killed after epoch 1 and resumed from the checkpoint, the training-chain trajectory logs the
    uninterrupted run's values bit for bit (re-anchoring every 2 epochs, the exact anchor at the first)."""
    x = prototype_data(9, 400, seed=2)

    def make():
        return RBM(9, 6, seed=0).init_from_data(x).compile(SGD(0.1, momentum=0.5), "pcd", n_chains=200, k=1)

    def cbs():
        return TrajectoryAISCallback(chains="training", seed=3, reanchor_every=2, ais_runs=20, ais_betas=200,
                                     anchor="exact", every=2)

    h_full, full_cb, h, resumed_cb = whole_and_resumed(make, cbs, x, 5, tmp_path)
    for k in resumed_cb.keys():
        np.testing.assert_array_equal(h[k], h_full[k][2:], err_msg=k)
    assert not math.isnan(h_full["logZ_drift"][3]) and math.isnan(h_full["logZ_drift"][2])
    assert torch.equal(full_cb.training.log_w, resumed_cb.training.log_w)


def test_increments_sum_to_the_free_energy_difference_of_a_numpy_reference():
    """Fixed chains, five parameter changes: the log weights are log p*_end(x) - log p*_start(x) by an
    independent numpy free energy, and log Z is the level plus their log mean exp."""
    m = RBM(12, 5, seed=0)
    x = (torch.rand(7, 12, generator=torch.Generator().manual_seed(0)) < 0.5).float()

    def log_p(model):
        W, b, c = (model.W.detach().double().numpy(), model.vbias.detach().double().numpy(),
                   model.hbias.detach().double().numpy())
        v = x.double().numpy()
        return v @ b + np.logaddexp(0, c + v @ W).sum(1)

    start = log_p(m)
    est = TrainingChainsAIS(m)
    est.start(3.0)
    assert est.logZ == 3.0 and math.isnan(est.ess) and not est.moved()
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        with torch.no_grad():
            m.W.add_(0.1 * torch.randn(m.W.shape, generator=g))
            m.vbias.add_(0.05)
        assert est.moved()
        est.advance(x)
    np.testing.assert_allclose(est.log_w.numpy(), log_p(m) - start, rtol=0, atol=1e-10)
    w = log_p(m) - start
    assert est.logZ == pytest.approx(3.0 + np.log(np.mean(np.exp(w))), abs=1e-10)
    assert est.updates == 5
    est.reanchor(7.0)
    assert est.logZ == 7.0 and est.log_w is None


def test_bad_input_names_the_fix():
    x = prototype_data(6, 100)
    m = RBM(6, 3, seed=0).compile(SGD(0.1), "cd")
    with pytest.raises(ValueError, match="persistent chains"):
        m.fit(x, epochs=1, verbose=0, callbacks=[TrajectoryAISCallback(chains="training")])
    with pytest.raises(ValueError, match="chains"):
        TrajectoryAISCallback(chains="theirs")
    est = TrainingChainsAIS(m)
    with pytest.raises(RuntimeError, match="start"):
        est.advance(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="log_z"):
        est.start(math.inf)
    hidden = TrainingChainsAIS(m, parity=1)
    hidden.start(0.0)
    with pytest.raises(ValueError, match="parity 0"):
        hidden.advance(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="parity"):
        TrainingChainsAIS(m).load_state_dict({**hidden.state_dict()})
