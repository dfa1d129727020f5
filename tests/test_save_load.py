"""Saving, loading, reproducibility and resuming."""

import numpy as np
import pytest
import torch

from natural_bm import RBM, SGD, load_model
from natural_bm.datasets import bars_and_stripes

X = bars_and_stripes(200, 3, seed=0)


def _trained(tmp_path=None, algorithm="pcd", epochs=2, seed=0):
    m = RBM(9, 6, seed=1).compile(SGD(0.1, momentum=0.5), algorithm, n_chains=17, l2=1e-3) if algorithm == "pcd" \
        else RBM(9, 6, seed=1).compile(SGD(0.1, momentum=0.5), algorithm)
    m.fit(X, batch_size=20, epochs=epochs, verbose=0, seed=seed)
    return m


def test_round_trip(tmp_path):
    m = _trained()
    path = m.save(tmp_path / "rbm.pt")
    m2 = RBM.load(path)
    for k, v in m.parameter_dict().items():
        assert torch.equal(v, getattr(m2, k))
    assert m2.get_config() == m.get_config() and m2.dtype == m.dtype
    assert m2.optimizer.state_dict()["hyperparameters"] == m.optimizer.state_dict()["hyperparameters"]
    assert torch.equal(m2.trainer.algorithm_state.chains, m.trainer.algorithm_state.chains)
    assert m2.trainer.l2 == 1e-3
    assert isinstance(load_model(path), RBM)
    raw = torch.load(path, weights_only=True)  # plain tensors and dicts only
    assert torch.equal(raw["state_dict"]["W"], m.W)
    m64 = RBM.load(path, dtype=torch.float64)
    assert m64.W.dtype == torch.float64


def test_warm_start_copies_parameters_but_not_the_training_state(tmp_path):
    """warm_start reads weights and biases only: the new model keeps its own optimiser and chains."""
    from natural_bm import DBM

    m = _trained()
    path = m.save(tmp_path / "rbm.pt")  # with optimiser state and persistent chains
    fresh = RBM(9, 6, seed=7, weight_scale=0.5).compile(SGD(0.003, momentum=0.2), "cd", k=3)
    before = fresh.optimizer.state_dict()["hyperparameters"]
    assert fresh.warm_start(path) is fresh
    for k, v in m.parameter_dict().items():
        assert torch.equal(v, getattr(fresh, k))
    assert fresh.optimizer.state_dict()["hyperparameters"] == before and fresh.trainer.algorithm_state is None
    assert fresh.weight_scale == 0.5  # init and weight_scale are not architecture
    with pytest.raises(ValueError, match=r"rbm.pt holds a RBM with .*'n_hidden': 6.* this model has .*'n_hidden': 5"):
        RBM(9, 5).warm_start(path)
    with pytest.raises(ValueError, match="holds a RBM, not a DBM"):
        DBM([9, 6]).warm_start(path)
    with pytest.raises(ValueError, match="up_factor"):  # a greedy-stack RBM is another architecture
        RBM(9, 6, up_factor=2.0).warm_start(path)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    m = _trained()
    path = m.save(tmp_path / "rbm.pt")
    before = path.read_bytes()

    def crash(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="could not write .*rbm.pt: disk full"):
        RBM(9, 6).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["rbm.pt"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        RBM.load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="corrupt"):
        RBM.load(bad)
    path = _trained().save(tmp_path / "rbm.pt")
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt"):
        RBM.load(trunc)
    with pytest.raises(ValueError, match="shape"):
        RBM(9, 7).load_weights(path)
    torch.save({"W": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a natural_bm model"):
        RBM.load(tmp_path / "foreign.pt")


@pytest.mark.parametrize("algorithm", ["cd", "pcd"])
def test_same_seed_gives_bit_identical_weights(algorithm):
    a, b = _trained(algorithm=algorithm, seed=5), _trained(algorithm=algorithm, seed=5)
    for k in a.param_names:
        assert torch.equal(getattr(a, k), getattr(b, k))
    c = _trained(algorithm=algorithm, seed=6)
    assert not torch.equal(a.W, c.W)


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    full = _trained(epochs=4, seed=9)
    half = _trained(epochs=2, seed=9)
    half.save(tmp_path / "ckpt.pt")
    resumed = RBM.load(tmp_path / "ckpt.pt")
    resumed.fit(X, batch_size=20, epochs=4, initial_epoch=2, verbose=0, seed=9)
    for k in full.param_names:
        assert torch.equal(getattr(full, k), getattr(resumed, k))
    assert resumed.optimizer.iterations == full.optimizer.iterations == 40


@pytest.mark.parametrize("algorithm,lr,kwargs,target", [
    ("exact", 0.1, {}, -3.0),  # exact gradient: close to the optimum -2.56
    ("pcd", 0.02, {"k": 5, "n_chains": 100}, -4.8),
    ("cd", 0.1, {"k": 1}, -4.8),
])
def test_training_raises_the_exact_likelihood_on_bars_and_stripes(algorithm, lr, kwargs, target):
    """Exact log-likelihood (numpy brute force) before and after training through ``fit``."""
    from reference import free_energy, log_z, params

    def ll(m):
        W, b, c = params(m)
        return float(np.mean(-free_energy(W, b, c, X.astype(np.float64))) - log_z(W, b, c))

    m = RBM(9, 8, seed=0, dtype=torch.float64).compile(SGD(lr, momentum=0.9), algorithm, **kwargs)
    before = ll(m)
    m.fit(X, batch_size=20, epochs=120, verbose=0, seed=0)
    after = ll(m)
    # the optimum is -2.56 nats (minus the entropy of 3x3 bars and stripes); uniform is -6.24
    assert before < -6.0 and after > target, (before, after)


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from natural_bm.io import _UMASK, atomic_write_text

    path = RBM(3, 2).save(tmp_path / "m.pt")
    atomic_write_text(tmp_path / "t.txt", "x")
    for p in (path, tmp_path / "t.txt"):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~_UMASK
