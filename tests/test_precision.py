"""The precision policy: bfloat16 training products against float32 and exact references."""

import warnings

import numpy as np
import pytest
import torch

from natural_bm import DBM, RBM, SGD
from natural_bm.datasets import bars_and_stripes
from natural_bm.estimators import log_partition_exact
from natural_bm.kernels import EMULATED_BFLOAT16, affine, statistics_difference, to_product
from natural_bm.run import ConfigError, resolve_config
from natural_bm.run.build import build_model
from natural_bm.training import precision as precision_module
from natural_bm.training.algorithms import ChainState, PersistentContrastiveDivergence
from natural_bm.training.rbm_steps import pcd_kernel

needs_bf16 = pytest.mark.skipif(not precision_module.bfloat16_supported("cpu"),
                                reason="this CPU has no bfloat16 matrix products")


def _bf16(x: np.ndarray) -> np.ndarray:
    """x rounded to bfloat16 (round to nearest even), as float64."""
    return torch.from_numpy(np.asarray(x, dtype=np.float32)).to(torch.bfloat16).double().numpy()


def _exact_problem(seed=0):
    """A problem whose forward products are exact in bfloat16: binary states, weights k/8 with |k| <= 8
    (sums of at most 12 of them are multiples of 1/8 below 12: 7 significant bits), float32 biases."""
    rng = np.random.default_rng(seed)
    W = rng.integers(-8, 9, (12, 8)) / 8.0
    b, c = rng.normal(0, 1, 12), rng.normal(0, 1, 8)
    v0 = (rng.random((6, 12)) < 0.5).astype(float)
    chains = (rng.random((5, 12)) < 0.5).astype(float)
    return [torch.from_numpy(a).float() for a in (v0, chains, W, b, c)]


def _fixed_uniforms(B, C, nv, nh, k, seed=3):
    rng = np.random.default_rng(seed)
    draws = [(torch.from_numpy(rng.random((B + C, nh))).float(), torch.from_numpy(rng.random((C, nv))).float())]
    draws += [(torch.from_numpy(rng.random((C, nh))).float(), torch.from_numpy(rng.random((C, nv))).float())
              for _ in range(1, k)]
    return lambda s: tuple(u.clone() for u in draws[s])  # (the kernels compare in place)


@pytest.mark.parametrize("pd", [torch.bfloat16, EMULATED_BFLOAT16])  # (torch's bfloat16 products run on any CPU)
@pytest.mark.parametrize("k", [1, 3])
def test_bfloat16_products_round_only_the_probabilities_of_the_gradient(k, pd):
    """Exact forward products: the sampled chains and the loss equal float32's; the weight gradient is
    one product of the stacked phases with the scaled probabilities rounded to bfloat16 and the
    difference rounded once (a numpy reference of that rounding), and the bias gradients stay float32's;
    the same in bfloat16 and emulated in float32."""
    v0, chains, W, b, c = _exact_problem()
    uniforms = _fixed_uniforms(6, 5, 12, 8, k)
    f32 = pcd_kernel(v0, chains, W, b, c, k, 1.0, 1.0, uniforms)
    bf = pcd_kernel(v0, chains, W, b, c, k, 1.0, 1.0, uniforms, pd)
    dW32, db32, dc32, loss32, chains32, p0 = f32
    dWbf, dbbf, dcbf, lossbf, chainsbf, _ = bf
    assert torch.equal(chains32, chainsbf)
    torch.testing.assert_close(lossbf, loss32, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(dbbf, db32, rtol=0, atol=0)
    torch.testing.assert_close(dcbf, dc32, rtol=0, atol=0)
    assert dWbf.dtype == torch.float32 and not torch.equal(dWbf, dW32)  # the products really ran in bfloat16
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    v_neg = chains32.double().numpy()
    p_neg = sig(v_neg @ W.double().numpy() + c.double().numpy())
    stacked_v = np.concatenate([v0.double().numpy(), v_neg])
    stacked_h = _bf16(np.concatenate([p0.double().numpy() / 6, -p_neg / 5]).astype(np.float32))
    ref = _bf16(stacked_v.T @ stacked_h)
    np.testing.assert_allclose(dWbf.double().numpy(), ref, rtol=2**-8, atol=1e-7)
    np.testing.assert_allclose(dWbf.double().numpy(), dW32.double().numpy(), atol=2**-7)


@pytest.mark.parametrize("bf16", [pytest.param("bfloat16", marks=needs_bf16), "bfloat16-emulated"])
def test_bfloat16_training_reaches_float32s_exact_likelihood(bf16):
    """A 9x8 RBM on bars and stripes: the exact mean log-likelihood after 30 epochs of PCD-1 in bfloat16
    (or its numerics emulated) is within 0.1 nats of the float32 run's with the same seed (measured: 0.001)."""
    x = bars_and_stripes(1000, 3, seed=0)
    ll = {}
    for prec in ("float32", bf16):
        m = RBM(9, 8, seed=0).init_from_data(x)
        m.compile(SGD(0.05, momentum=0.5), "pcd", k=1, n_chains=50, precision=prec)
        m.fit(x, batch_size=20, epochs=30, verbose=0, seed=0)
        assert m.W.dtype == torch.float32  # master weights
        ll[prec] = float(-m.free_energy(torch.as_tensor(x)).mean()) - log_partition_exact(m)
    assert ll["float32"] > -6.0
    assert abs(ll[bf16] - ll["float32"]) < 0.1 and ll[bf16] != ll["float32"]  # (and it did round)


def test_without_bfloat16_hardware_it_warns_once_and_trains_in_float32(monkeypatch):
    monkeypatch.setattr(precision_module, "bfloat16_supported", lambda device_type: False)
    precision_module.product_dtype.cache_clear()
    try:
        x = torch.as_tensor(bars_and_stripes(200, 3, seed=0))
        runs = {}
        for prec in ("float32", "bfloat16"):
            m = RBM(9, 8, seed=0).compile(SGD(0.05), "pcd", k=1, n_chains=20, precision=prec)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                m.fit(x, batch_size=20, epochs=2, verbose=0, seed=0)
            runs[prec] = (m.W.clone(), [str(w.message) for w in caught if "bfloat16" in str(w.message)])
        assert runs["float32"][1] == []
        assert len(runs["bfloat16"][1]) == 1 and "training in float32" in runs["bfloat16"][1][0]
        assert torch.equal(runs["float32"][0], runs["bfloat16"][0])
    finally:
        precision_module.product_dtype.cache_clear()


def test_precision_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="`precision` must be one of"):
        RBM(9, 4).compile(SGD(0.1), "cd", precision="float16")
    with pytest.raises(ValueError, match="binary units.*precision='float32'"):
        RBM(9, 4, units=["gaussian", "bernoulli"]).compile(SGD(0.1), "pcd", precision="bfloat16")
    with pytest.raises(TypeError, match="precision"):  # mfpcd takes no such setting: the valid names are listed
        DBM([9, 4, 3]).compile(SGD(0.1), "mfpcd", precision="bfloat16")
    cfg = resolve_config({"model": {"type": "dbm", "layer_sizes": [9, 4, 3]}, "data": {"name": "bars_and_stripes"},
                          "training": {"precision": "bfloat16"}})
    with pytest.raises(ConfigError, match="training.precision 'bfloat16' is for the cd and pcd"):
        build_model(cfg, 9)


def test_precision_survives_a_checkpoint(tmp_path):
    x = torch.as_tensor(bars_and_stripes(100, 3, seed=0))
    m = RBM(9, 4, seed=0).compile(SGD(0.05), "pcd", k=2, n_chains=10, precision="bfloat16")
    m.fit(x, batch_size=20, epochs=1, verbose=0, seed=0)
    m.save(tmp_path / "m.pt")
    back = RBM.load(tmp_path / "m.pt")
    alg = back.trainer.algorithm
    assert isinstance(alg, PersistentContrastiveDivergence) and alg.precision == "bfloat16" and alg.k == 2
    assert isinstance(back.trainer.algorithm_state, ChainState)


@needs_bf16
@pytest.mark.slow
def test_the_compiled_step_in_bfloat16_equals_the_eager_kernel():
    """The compiled PCD step with bfloat16 products (one more compilation, hence slow) against the same
    pure function run eagerly with the same counters: same chains, gradients within bfloat16 rounding."""
    from natural_bm.training import rbm_steps

    v0, chains, W, b, c = _exact_problem(seed=1)
    idx = torch.arange(11 * 12).view(11, 12)
    key = torch.tensor(424242)
    eager = rbm_steps.rbm_pcd_step(v0, chains, W, b, c, key, idx, 2, 1.0, 1.0, torch.bfloat16)
    calls = rbm_steps.compiled_pcd_step.compiled_calls
    compiled = rbm_steps.compiled_pcd_step(v0, chains, W, b, c, key, idx, 2, 1.0, 1.0, torch.bfloat16)
    assert rbm_steps.compiled_pcd_step.compiled_calls == calls + 1 and not rbm_steps.compiled_pcd_step.failed
    assert torch.equal(compiled[4], eager[4])
    for got, want in zip(compiled[:4], eager[:4], strict=True):
        torch.testing.assert_close(got, want, rtol=2**-7, atol=1e-5)


def test_emulated_bfloat16_products_equal_bfloat16_products():
    """affine and statistics_difference with EMULATED_BFLOAT16 (float32 arithmetic) against torch's bfloat16
    products: the same bfloat16-rounded results, up to one bfloat16 rounding step where the float32 sums
    are added in another order; and not float32's."""
    g = torch.Generator().manual_seed(0)
    x, W, bias = torch.rand(40, 30, generator=g), torch.randn(30, 20, generator=g), torch.randn(20, generator=g)
    hw = affine(bias, x, W.to(torch.bfloat16), 0.5, torch.bfloat16)
    em = affine(bias, x, to_product(W, EMULATED_BFLOAT16), 0.5, EMULATED_BFLOAT16)
    assert em.dtype == torch.float32 and not torch.equal(em, affine(bias, x, W, 0.5))
    torch.testing.assert_close(em, hw, rtol=2**-7, atol=1e-6)
    v, h = (torch.rand(40, 30, generator=g) < 0.5).float(), torch.rand(40, 20, generator=g)
    v2, h2 = (torch.rand(25, 30, generator=g) < 0.5).float(), torch.rand(25, 20, generator=g)
    for a, b in zip(statistics_difference(v, h, v2, h2, EMULATED_BFLOAT16),
                    statistics_difference(v, h, v2, h2, torch.bfloat16), strict=True):
        torch.testing.assert_close(a, b, rtol=2**-7, atol=1e-6)


def test_emulated_precision_trains_from_a_config_on_any_cpu():
    cfg = resolve_config({"model": {"type": "rbm", "n_hidden": 4}, "data": {"name": "bars_and_stripes"},
                          "training": {"algorithm": "pcd", "precision": "bfloat16-emulated"}})
    model = build_model(cfg, 9)
    assert model.trainer.algorithm.precision == "bfloat16-emulated"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fall-back warning: emulation needs no hardware
        model.fit(torch.as_tensor(bars_and_stripes(40, 3, seed=0)), batch_size=20, epochs=1, verbose=0, seed=0)
