"""oneDNN products with packed weights against float64 numpy, eagerly, compiled and in AIS."""

import numpy as np
import pytest
import torch
from conftest import random_rbm

from natural_bm import onednn
from natural_bm.compiling import CompiledFunction
from natural_bm.estimators import AIS, EngineOptions, log_partition_exact

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="this torch build has no oneDNN (mkldnn)")


@pytest.fixture(autouse=True)
def _pack_small_matrices(monkeypatch):
    """These tests use small matrices, which ``pack`` leaves unpacked by default (MIN_PACKED_ELEMENTS)."""
    monkeypatch.setattr(onednn, "MIN_PACKED_ELEMENTS", 0)


def _operands(rows=37, n_in=29, n_out=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((rows, n_in), 0.5), generator=g)
    w = torch.randn(n_in, n_out, generator=g)
    b = torch.randn(n_out, generator=g)
    return x, w, b


def _reference(b, x, w):
    return b.double().numpy() + x.double().numpy() @ w.double().numpy()


@needs_onednn
@pytest.mark.parametrize("transposed", [False, True])
def test_packed_addmm_equals_float64_reference(transposed):
    x, w, b = _operands()
    if transposed:  # w.T, a non-contiguous view, as AIS's second product uses it
        x, w, b = _operands(n_in=13, n_out=29)
        w = torch.randn(29, 13).T
    packed = onednn.pack(w, x.shape[0])
    assert packed is not None
    y = onednn.addmm(b, x, w, packed.token)
    np.testing.assert_allclose(y.double().numpy(), _reference(b, x, w), rtol=0, atol=2e-5)
    y_other_rows = onednn.addmm(b, x[:5], w, packed.token)  # packed for 37 rows, used with 5
    np.testing.assert_allclose(y_other_rows.double().numpy(), _reference(b, x[:5], w), rtol=0, atol=2e-5)


@needs_onednn
def test_packed_addmm_compiles_and_released_tokens_fall_back():
    x, w, b = _operands()
    packed = onednn.pack(w, x.shape[0])
    f = CompiledFunction(lambda b, x, w, t: torch.sigmoid(onednn.addmm(b, x, w, t)), "test product")
    ref = 1 / (1 + np.exp(-_reference(b, x, w)))
    np.testing.assert_allclose(f(b, x, w, packed.token).double().numpy(), ref, atol=2e-6)
    assert not f.failed  # the custom operator traced; no eager fall-back
    token = packed.token
    packed.release()
    assert int(token) not in onednn._PACKED
    np.testing.assert_allclose(onednn.addmm(b, x, w, token).double().numpy(), _reference(b, x, w), atol=2e-5)


@needs_onednn
def test_products_as_callables_compile_once_across_runs():
    """A kernel takes its matrix products as ``Product`` callables: a new packed product per run (new
    weights, new token) reuses the compiled graph, and the packed copies are freed after the block."""
    from torch._dynamo.utils import counters

    x, w, b = _operands(seed=1)
    f = CompiledFunction(lambda mm, x: torch.sigmoid(mm(b, x)), "test product callable")
    frames = None
    for seed in (2, 3, 4):
        _, w, _ = _operands(seed=seed)
        with onednn.packed_products([w, w.T], x.shape[0]) as (mm, mm_t):
            assert mm.token is not None and int(mm.token) in onednn._PACKED
            np.testing.assert_allclose(f(mm, x).double().numpy(), 1 / (1 + np.exp(-_reference(b, x, w))),
                                       atol=2e-6)
            np.testing.assert_allclose(mm_t(torch.zeros(29), torch.ones(3, 13)).double().numpy(),
                                       _reference(torch.zeros(29), torch.ones(3, 13), w.T), atol=2e-5)
        assert int(mm.token) not in onednn._PACKED
        if frames is None:
            frames = counters["frames"]["total"]
        assert counters["frames"]["total"] == frames  # no recompilation for the second and third runs
    assert not f.failed and f.compiled_calls == 3
    with onednn.packed_products([w], x.shape[0], enabled=False) as (mm,):  # unpacked: torch.addmm
        assert mm.token is None
        np.testing.assert_allclose(mm(b, x).double().numpy(), _reference(b, x, w), atol=2e-5)


def test_pack_applies_to_float32_cpu_only():
    x, w, b = _operands()
    with pytest.raises(ValueError, match="`w` must be a 2-D tensor"):
        onednn.pack(w[0], 4)
    with pytest.raises(ValueError, match="`batch_size`"):
        onednn.pack(w, 0)
    assert onednn.pack(w.double(), 4) is None
    onednn.MIN_PACKED_ELEMENTS = w.numel() + 1  # (restored by the fixture) small matrices stay unpacked
    assert onednn.pack(w, 4) is None
    if not onednn.available():
        assert onednn.pack(w, 4) is None
    # without a token it is torch.addmm, in any dtype
    np.testing.assert_allclose(onednn.addmm(b.double(), x.double(), w.double()).numpy(), _reference(b, x, w),
                               rtol=1e-12)


@needs_onednn
@pytest.mark.parametrize("compile", [True, False])
def test_ais_with_packed_weights_equals_ais_without(compile):
    """Same seed, same counters: the two product paths give the same log weights.

    The products differ by float32 rounding (about 1e-6), which can flip a
    sample whose uniform lies that close to its probability, after which that
    run's chain differs; so most runs, not all, must agree to 1e-4.
    """
    m = random_rbm(30, 9, scale=0.3, seed=5, dtype=torch.float32)
    runs = {}
    for packed in (True, False):
        a = AIS(m, n_runs=40, n_betas=300, base="uniform", seed=2, progress=False,
                engine=EngineOptions(packed_weights=packed, jit_compile=compile))
        a.run_logZ()
        runs[packed] = a
    same = (runs[True].log_w - runs[False].log_w).abs() < 1e-4
    assert float(same.double().mean()) >= 0.9
    assert abs(runs[True].logZ - runs[False].logZ) < 0.02
    assert abs(runs[True].logZ - log_partition_exact(random_rbm(30, 9, scale=0.3, seed=5), progress=False)) < 0.1
    assert not onednn._PACKED  # AIS released its packed copies
