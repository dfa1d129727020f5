"""The pure maths kernels against float64 references."""

import numpy as np
import pytest
import torch

from natural_bm.estimators import AIS, log_partition_exact
from natural_bm.kernels import sigmoid_and_softplus_increment, softplus_increment


def _reference(a_new: np.ndarray, a_old: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a_new) - np.logaddexp(0.0, a_old)  # softplus difference in float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softplus_increment_matches_the_softplus_difference_everywhere(dtype):
    """Tiny AIS steps (where the naive difference cancels) and large steps towards saturated units (where
    the one-sided form 1 + p expm1(-da) cancels: a_old = 30, a_new = 60 gave +inf before), in both
    directions, up to steps of 60 nats and inputs of +-100."""
    rng = np.random.default_rng(0)
    a_old = np.concatenate([rng.normal(0, 5, 2000), [30.0, -30.0, 40.0, 0.0, -30.0, 10.0, 95.0, -95.0]])
    step = np.concatenate([rng.normal(0, 1e-3, 1000), np.clip(rng.normal(0, 25, 1000), -60, 60),
                           [30.0, 60.0, 55.0, 60.0, -30.0, -40.0, 5.0, -5.0]])
    a_new = a_old + step
    a_new_t = torch.tensor(a_new, dtype=dtype)
    a_old_t = torch.tensor(a_old, dtype=dtype)
    da = a_new_t - a_old_t
    got = softplus_increment(a_new_t, da).double().numpy()
    ref = _reference(a_new_t.double().numpy(), (a_new_t - da).double().numpy())
    assert np.all(np.isfinite(got))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * 1e-3)
    p, inc = sigmoid_and_softplus_increment(a_new_t, da)  # the mean from the increment's exponential
    np.testing.assert_array_equal(inc.numpy(), softplus_increment(a_new_t, da).numpy())
    a = a_new_t.double().numpy()
    sig = np.where(a > 0, 1 / (1 + np.exp(-a)), np.exp(a) / (1 + np.exp(a)))  # float64 sigmoid
    np.testing.assert_allclose(p.double().numpy(), sig, rtol=4 * torch.finfo(dtype).eps,
                               atol=torch.finfo(dtype).tiny)  # (subnormal e at a_new = -95 in float32)


def test_ais_with_a_coarse_schedule_on_large_inputs_stays_finite():
    """Ten betas on an RBM with large weights: steps of tens of nats per unit used to make log w +inf."""
    g = torch.Generator().manual_seed(0)
    from natural_bm import RBM

    m = RBM(12, 6, seed=0)
    with torch.no_grad():
        m.W.copy_(torch.randn(12, 6, generator=g) * 8)
    ais = AIS(m, n_runs=50, n_betas=10, base="uniform", seed=0, progress=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ten betas give few effective runs: expected here
        log_z = ais.run_logZ()
    assert np.isfinite(log_z) and torch.isfinite(ais.log_w).all()
    assert abs(log_z - log_partition_exact(m)) < 50  # a rough estimate, but a number
