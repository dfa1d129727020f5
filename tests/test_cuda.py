"""The CUDA paths against the CPU and against exact values (skipped without a GPU).

CI has no GPU; these run on a lent GPU machine with
``PYTHONPATH=. python3 -m pytest tests/test_cuda.py``.
"""

import numpy as np
import pytest
import torch
from conftest import random_rbm, randomize
from reference import free_energy, log_z, params

from natural_bm import DBM, RBM, SGD, load_model
from natural_bm.datasets.synthetic import bars_and_stripes
from natural_bm.estimators import AIS, EngineOptions, default_betas, log_partition_exact
from natural_bm.rng import counter_uniform_pair, stream_key

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def _mnist_like_rbm(nh, seed=0, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    m = RBM(784, nh)
    with torch.no_grad():
        m.W.copy_(scale * torch.randn(784, nh, generator=g))
        m.vbias.copy_(-1.0 + 0.5 * torch.randn(784, generator=g))
        m.hbias.copy_(-0.5 + 0.1 * torch.randn(nh, generator=g))
    return m


def test_counter_uniforms_are_bit_identical_on_cpu_and_cuda():
    idx = torch.arange(10_000, dtype=torch.int64).view(100, 100)
    key = torch.tensor(stream_key(3, 1), dtype=torch.int64)
    a_cpu, b_cpu = counter_uniform_pair(idx, key)
    a_gpu, b_gpu = counter_uniform_pair(idx.to(CUDA), key.to(CUDA))
    assert torch.equal(a_cpu, a_gpu.cpu()) and torch.equal(b_cpu, b_gpu.cpu())


def test_free_energy_and_conditionals_on_cuda_equal_numpy():
    m = random_rbm(7, 5, scale=1.2, seed=3)
    W, b, c = params(m)
    m.to(CUDA)
    v = (np.random.default_rng(0).random((20, 7)) < 0.5).astype(np.float64)
    vt = torch.from_numpy(v).to(CUDA)
    np.testing.assert_allclose(m.free_energy(vt).cpu().numpy(), free_energy(W, b, c, v), atol=1e-10)
    np.testing.assert_allclose(m.prob_h_given_v(vt).cpu().numpy(), 1 / (1 + np.exp(-(v @ W + c))), atol=1e-12)


def test_exact_log_z_on_cuda_equals_brute_force_and_cpu():
    m = random_rbm(7, 5, scale=1.3, seed=2)
    assert log_partition_exact(m, device=CUDA) == pytest.approx(log_z(*params(m)), abs=1e-9)
    big = _mnist_like_rbm(16, seed=1).double()
    on_cpu = log_partition_exact(big, progress=False)
    assert log_partition_exact(big.to(CUDA), progress=False) == pytest.approx(on_cpu, abs=1e-9)


def test_ais_cuda_graph_replay_is_bit_identical_to_the_plain_loop():
    m = _mnist_like_rbm(50, seed=2).to(CUDA)
    betas = default_betas(2 * 2 * 128 + 38)  # two whole graph chunks, 36 looped steps and one odd step
    kw = dict(n_runs=64, betas=betas, base="uniform", seed=5, progress=False, compile=True)
    a = AIS(m, **kw, engine=EngineOptions(cuda_graph=True))
    b = AIS(m, **kw, engine=EngineOptions(cuda_graph=False))
    a.run_logZ()
    b.run_logZ()
    assert torch.equal(a.log_w, b.log_w)
    a.run_reverse(n_gibbs=10)
    b.run_reverse(n_gibbs=10)
    assert torch.equal(a.log_w_reverse, b.log_w_reverse)


def test_dbm_ais_cuda_graph_replay_is_bit_identical_to_the_plain_loop():
    """The one AIS engine gives DBMs the CUDA-graph replay too."""
    from natural_bm import DBM

    d = DBM([30, 12, 8], seed=0, dtype=torch.float64)
    randomize(d, 0.5, seed=1)
    d = d.to(CUDA)
    betas = default_betas(2 * 128 + 40)  # two whole graph chunks and a looped/eager tail
    kw = dict(n_runs=32, betas=betas, base="uniform", seed=5, progress=False, compile=True)
    a, b = AIS(d, **kw, engine=EngineOptions(cuda_graph=True)), AIS(d, **kw, engine=EngineOptions(cuda_graph=False))
    a.run_logZ()
    b.run_logZ()
    assert torch.equal(a.log_w, b.log_w)


@pytest.mark.parametrize("compile", [True, False])
def test_ais_on_cuda_matches_exact_log_z(compile):
    m = _mnist_like_rbm(15, seed=4)
    exact = log_partition_exact(m, progress=False)
    ais = AIS(m.to(CUDA), n_runs=100, base="uniform", seed=0, progress=False, engine=EngineOptions(jit_compile=compile))
    z, lo, hi = ais.estimate_log_error_Z()
    assert abs(z - exact) < 0.1 and lo <= exact <= hi
    assert ais.log_w.device.type == "cuda"


@pytest.mark.parametrize("jit", [False, True])
def test_fit_on_cuda_is_reproducible_and_learns_as_on_the_cpu(jit):
    x = bars_and_stripes(500, 3, seed=0)

    def train(device):
        m = RBM(9, 16, seed=0, device=device, dtype=torch.float64).compile(SGD(0.1, momentum=0.5), "pcd",
                                                                           n_chains=50, jit_compile=jit)
        m.fit(x, batch_size=50, epochs=60, verbose=0, seed=0)
        return m

    def exact_ll(m):
        return float((-m.free_energy(torch.from_numpy(x).to(m.device).double())).mean()) - log_partition_exact(m)

    a, b = train(CUDA), train(CUDA)
    for name in ("W", "vbias", "hbias"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    # CPU and CUDA draw different random numbers, so compare what was learned:
    # the CPU run reaches -5.45 nats here (seeds differ by ~0.04), untrained is -6.24.
    ll_cuda, ll_cpu = exact_ll(a), exact_ll(train("cpu"))
    assert abs(ll_cuda - ll_cpu) < 0.15
    assert ll_cuda > exact_ll(RBM(9, 16, seed=0, dtype=torch.float64)) + 0.5


def test_dbm_on_cuda_exact_and_ais_equal_cpu(tmp_path):
    d = DBM([8, 4, 3], dtype=torch.float64, seed=1)
    randomize(d, 0.8, seed=0)
    exact_cpu = log_partition_exact(d)
    d_gpu = d.to(CUDA)  # in place, as for any torch module
    assert log_partition_exact(d_gpu) == pytest.approx(exact_cpu, abs=1e-9)
    z, lo, hi = AIS(d_gpu, n_runs=200, n_betas=4000, base="uniform", seed=0, progress=False).estimate_log_error_Z()
    assert abs(z - exact_cpu) < 0.1 and lo <= exact_cpu <= hi
    path = d_gpu.save(tmp_path / "dbm.pt")
    back = load_model(path)
    assert back.device.type == "cpu"
    assert log_partition_exact(back) == pytest.approx(exact_cpu, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2])
def test_compiled_cd_and_pcd_steps_on_cuda_equal_the_numpy_reference(k):
    from test_compiled_steps import _problem, reference_cd, reference_pcd

    from natural_bm.training import rbm_steps

    v0, W, b, c = _problem(nv=30, nh=20)
    key = torch.tensor(123456789)
    idx = torch.arange(16 * 30).view(16, 30)
    t = [torch.from_numpy(a).to(CUDA) for a in (v0, W, b, c)]
    out = rbm_steps.compiled_cd_step(*t, key.to(CUDA), idx.to(CUDA), k, 1.0, 1.0)
    for got, want in zip(out, reference_cd(v0, W, b, c, idx, key, k, 1.0, 1.0), strict=True):
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-9, atol=1e-11)
    chains = (np.random.default_rng(2).random((7, 30)) < 0.5).astype(float)
    idx = torch.arange(23 * 30).view(23, 30)
    out = rbm_steps.compiled_pcd_step(t[0], torch.from_numpy(chains).to(CUDA), *t[1:], key.to(CUDA),
                                      idx.to(CUDA), k, 1.0, 1.0)
    for got, want in zip(out, reference_pcd(v0, chains, W, b, c, idx, key, k, 1.0, 1.0), strict=True):
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("algorithm", ["cd", "pcd"])
def test_fit_replays_the_whole_update_from_a_cuda_graph_as_the_ordinary_path_trains(monkeypatch, algorithm):
    from test_graphed_update import _train_on, spy_on_graphed_updates

    made = spy_on_graphed_updates(monkeypatch, on_cpu=False)
    ref = _train_on(CUDA, algorithm, cuda_graph=False)
    assert not made
    got = _train_on(CUDA, algorithm, cuda_graph=True)
    assert len(made) == 1 and made[0].graph is not None and made[0].replays == 2 * 4 and made[0].builds == 1
    for name in ("W", "vbias", "hbias"):
        torch.testing.assert_close(getattr(got, name), getattr(ref, name), rtol=0, atol=1e-12)
    assert got.optimizer.iterations == ref.optimizer.iterations
    np.testing.assert_allclose(got.history.history["loss"], ref.history.history["loss"], rtol=1e-12)
    if algorithm == "pcd":
        assert torch.equal(got.trainer.algorithm_state.chains, ref.trainer.algorithm_state.chains)
