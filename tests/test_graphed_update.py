"""The captured training update (training.graphed_update) and the optimiser's tensor hyper-parameters.

The CUDA graph itself needs a GPU (tests/test_cuda.py); here the same static-buffer update runs
eagerly (``capture=False``) and must train exactly as the ordinary path does.
"""

import numpy as np
import pytest
import torch

from natural_bm import RBM, SGD, Adam
from natural_bm.training import fit as fit_module
from natural_bm.training.graphed_update import GraphedUpdate
from natural_bm.training.regularizers import apply_max_norm


def _groups():
    return [{"params": ["W"], "l2": 1e-3, "l1": 1e-4, "max_norm": 0.9},
            {"params": ["vbias"], "lr": 0.02, "lr_factor": 0.5},
            {"params": ["hbias"], "frozen": True}]


@pytest.mark.parametrize("nesterov", [False, True])
def test_apply_gradients_with_tensor_hyperparameters_equals_the_float_step(nesterov):
    g = torch.Generator().manual_seed(0)
    params = {"W": torch.randn(6, 4, generator=g, dtype=torch.float64) * 0.5,
              "vbias": torch.randn(6, generator=g, dtype=torch.float64),
              "hbias": torch.randn(4, generator=g, dtype=torch.float64)}
    a = SGD(lr=0.1, momentum=0.7, nesterov=nesterov, decay=1e-2, decay_mode="exponential")
    b = SGD(lr=0.1, momentum=0.7, nesterov=nesterov, decay=1e-2, decay_mode="exponential")
    a.set_param_groups(_groups())
    b.set_param_groups(_groups())
    pa = {k: v.clone() for k, v in params.items()}
    pb = {k: v.clone() for k, v in params.items()}
    hyper = b.device_hyperparameters(torch.device("cpu"), torch.float64)
    for t in range(5):
        grads = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in params.items()}
        if t == 3:  # a schedule changes the rates between updates
            a.lr = b.lr = 0.03
            a.momentum = b.momentum = 0.9
        a.step(pa, {k: v.clone() for k, v in grads.items()})
        b.fill_hyperparameters(hyper)
        b.apply_gradients(pb, {k: v.clone() for k, v in grads.items()}, hyper)
        b.iterations += 1
    for k in params:
        np.testing.assert_allclose(pb[k].numpy(), pa[k].numpy(), rtol=0, atol=1e-14)
    assert torch.equal(pb["hbias"], params["hbias"])  # frozen
    assert float(torch.linalg.vector_norm(pb["W"], dim=0).max()) <= 0.9 + 1e-12


def test_adam_refuses_tensor_hyperparameters():
    opt = Adam()
    assert not opt.capturable
    with pytest.raises(ValueError, match="tensors"):
        opt.apply_gradients({"W": torch.zeros(2)}, {"W": torch.ones(2)}, {"lr": torch.tensor(0.1)})


def test_max_norm_scales_only_columns_over_the_bound_exactly():
    w = torch.tensor([[3.0, 0.1, 1.0], [4.0, 0.2, 0.0]], dtype=torch.float64)
    before = w.clone()
    apply_max_norm({"W": w}, 2.0, ("W",))
    np.testing.assert_allclose(w[:, 0].numpy(), [1.2, 1.6], rtol=1e-15)  # norm 5 -> 2
    assert torch.equal(w[:, 1:], before[:, 1:])  # within the bound: bit-identical


def _train_on(device, algorithm, cuda_graph=True, epochs=2):
    """A float64 RBM trained with the compiled steps, SGD with momentum, decay, l2 and max-norm; 300 rows
    in batches of 64 (4 full batches and one of 44 per epoch)."""
    rng = np.random.default_rng(0)
    x = (rng.random((300, 12)) < 0.3).astype(np.float64)
    m = RBM(12, 7, seed=1, dtype=torch.float64, device=device)
    opt = SGD(lr=0.1, momentum=0.5, decay=1e-3, decay_mode="exponential")
    m.compile(opt, algorithm, jit_compile=True, l2=1e-4, max_norm=1.5, k=2, cuda_graph=cuda_graph,
              **({"n_chains": 20} if algorithm == "pcd" else {}))
    m.fit(x, batch_size=64, epochs=epochs, verbose=0, seed=3, shuffle=True)
    return m


def spy_on_graphed_updates(monkeypatch, on_cpu: bool = True) -> list:
    """Make ``fit`` record the ``GraphedUpdate`` it creates in the returned list; with ``on_cpu``, let it
    use one on the CPU too (uncaptured)."""
    made = []

    class Spy(GraphedUpdate):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(fit_module, "GraphedUpdate", Spy)
    if on_cpu:
        monkeypatch.setattr(Spy, "supported", staticmethod(lambda model: True))
    return made


def _train(monkeypatch, algorithm, graphed: bool):
    made = spy_on_graphed_updates(monkeypatch) if graphed else []
    m = _train_on("cpu", algorithm)
    monkeypatch.undo()
    return m, made


@pytest.mark.parametrize("algorithm", ["cd", "pcd"])
def test_static_buffer_update_trains_as_the_ordinary_path(monkeypatch, algorithm):
    ref, _ = _train(monkeypatch, algorithm, graphed=False)
    got, made = _train(monkeypatch, algorithm, graphed=True)
    # 4 full batches of 64 per epoch go through it; the 44-row one does not
    assert len(made) == 1 and made[0].replays == 2 * 4 and made[0].builds == 1
    assert made[0].graph is None  # (CPU: no capture)
    for name in ("W", "vbias", "hbias"):
        np.testing.assert_allclose(getattr(got, name).numpy(), getattr(ref, name).numpy(), rtol=0, atol=1e-12)
    assert got.optimizer.iterations == ref.optimizer.iterations == 2 * 5
    np.testing.assert_allclose(got.history.history["loss"], ref.history.history["loss"], rtol=1e-12)
    if algorithm == "pcd":
        assert torch.equal(got.trainer.algorithm_state.chains, ref.trainer.algorithm_state.chains)
        torch.testing.assert_close(got.optimizer.state["W"]["velocity"], ref.optimizer.state["W"]["velocity"],
                                   rtol=0, atol=1e-12)


def test_supported_only_on_cuda_with_sgd_and_the_compiled_steps():
    m = RBM(4, 3, seed=0).compile("sgd", "pcd", jit_compile=True)
    assert not GraphedUpdate.supported(m.trainer)  # CPU
    assert m.optimizer.capturable and m.trainer.algorithm.has_compiled_step
    assert not RBM(4, 3).compile("adam", "cd").optimizer.capturable
    assert not RBM(4, 3).compile("sgd", "exact").trainer.algorithm.has_compiled_step


def test_a_group_frozen_mid_run_is_captured_again_and_respected(monkeypatch):
    from natural_bm.callbacks import Callback

    class FreezeHiddenBiases(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.optimizer.group_of("hbias")["frozen"] = True

    def train(graphed):
        made = spy_on_graphed_updates(monkeypatch) if graphed else []
        x = (np.random.default_rng(0).random((256, 12)) < 0.3).astype(np.float64)
        m = RBM(12, 7, seed=1, dtype=torch.float64).compile(SGD(0.1, momentum=0.5), "pcd", jit_compile=True,
                                                             n_chains=16)
        m.fit(x, batch_size=64, epochs=2, verbose=0, seed=3, callbacks=[FreezeHiddenBiases()])
        monkeypatch.undo()
        return m, made

    ref, _ = train(False)
    got, made = train(True)
    assert made[0].builds == 2 and made[0].replays == 8
    for name in ("W", "vbias", "hbias"):
        np.testing.assert_allclose(getattr(got, name).numpy(), getattr(ref, name).numpy(), rtol=0, atol=1e-12)
    assert torch.equal(got.trainer.algorithm_state.chains, ref.trainer.algorithm_state.chains)


def test_a_reloaded_optimizer_state_is_captured_again(monkeypatch):
    """Loading the optimiser's state mid-run replaces its slot tensors: the graph must not keep the old ones."""
    from natural_bm.callbacks import Callback

    class Reload(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                opt = self.model.optimizer
                opt.load_state_dict(opt.state_dict())  # same values, new tensors

    def train(graphed):
        made = spy_on_graphed_updates(monkeypatch) if graphed else []
        x = (np.random.default_rng(1).random((256, 12)) < 0.3).astype(np.float64)
        m = RBM(12, 7, seed=1, dtype=torch.float64).compile(SGD(0.1, momentum=0.9), "cd", jit_compile=True)
        m.fit(x, batch_size=64, epochs=2, verbose=0, seed=3, callbacks=[Reload()])
        monkeypatch.undo()
        return m, made

    ref, _ = train(False)
    got, made = train(True)
    assert made[0].builds == 2
    for name in ("W", "vbias", "hbias"):
        np.testing.assert_allclose(getattr(got, name).numpy(), getattr(ref, name).numpy(), rtol=0, atol=1e-12)
