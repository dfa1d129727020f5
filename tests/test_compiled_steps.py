"""Compiled CD/PCD steps against a numpy reference fed the same uniforms, and through fit."""

import warnings

import numpy as np
import pytest
import torch

from natural_bm import RBM, SGD
from natural_bm.compiling import CompiledFunction
from natural_bm.datasets import bars_and_stripes
from natural_bm.rng import gibbs_uniforms
from natural_bm.training import rbm_steps


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _uniforms(idx, key, step, nv, nh):
    u_h, u_v = gibbs_uniforms(idx + step * idx.numel(), key, nv, nh, torch.float64)
    return u_h.numpy(), u_v.numpy()


def reference_cd(v0, W, b, c, idx, key, k, up, down):
    """CD-k in numpy with the uniforms of the compiled step."""
    nv, nh = W.shape
    u_h, u_v = _uniforms(idx, key, 0, nv, nh)
    p0 = _sig(up * v0 @ W + c)
    h = (u_h < p0).astype(float)
    a = down * h @ W.T + b
    loss = (np.logaddexp(0, a) - v0 * a).sum(1)
    v = (u_v < _sig(a)).astype(float)
    for s in range(1, k):
        u_h, u_v = _uniforms(idx, key, s, nv, nh)
        h = (u_h < _sig(up * v @ W + c)).astype(float)
        v = (u_v < _sig(down * h @ W.T + b)).astype(float)
    p1 = _sig(up * v @ W + c)
    n = len(v0)
    return (v0.T @ p0 - v.T @ p1) / n, (v0 - v).mean(0), (p0 - p1).mean(0), loss


def reference_pcd(v0, chains, W, b, c, idx, key, k, up, down):
    nv, nh = W.shape
    B = len(v0)
    u_h, u_v = _uniforms(idx, key, 0, nv, nh)
    x = np.concatenate([v0, chains])
    p = _sig(up * x @ W + c)
    h = (u_h < p).astype(float)
    a = down * h @ W.T + b
    loss = (np.logaddexp(0, a[:B]) - v0 * a[:B]).sum(1)
    v = (u_v[B:] < _sig(a[B:])).astype(float)
    for s in range(1, k):
        u_h, u_v = _uniforms(idx[B:], key, s, nv, nh)
        h = (u_h < _sig(up * v @ W + c)).astype(float)
        v = (u_v < _sig(down * h @ W.T + b)).astype(float)
    p_neg = _sig(up * v @ W + c)
    return (v0.T @ p[:B] / B - v.T @ p_neg / len(v)), v0.mean(0) - v.mean(0), \
        p[:B].mean(0) - p_neg.mean(0), loss, v


def _problem(nv=30, nh=20, rows=16, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.8, (nv, nh))
    b, c = rng.normal(0, 1, nv), rng.normal(0, 1, nh)
    v0 = rng.random((rows, nv))  # grey levels
    return v0, W, b, c


@pytest.mark.parametrize("k,up,down", [(1, 1.0, 1.0), (3, 2.0, 1.0)])
@pytest.mark.parametrize("compiled", [False, True])
def test_cd_step_equals_numpy_reference(k, up, down, compiled):
    v0, W, b, c = _problem(nv=30, nh=20)
    idx = torch.arange(16 * 30).view(16, 30)
    key = torch.tensor(123456789)
    fn = rbm_steps.compiled_cd_step if compiled else rbm_steps.rbm_cd_step
    t = [torch.from_numpy(a) for a in (v0, W, b, c)]
    calls = rbm_steps.compiled_cd_step.compiled_calls
    out = fn(*t, key, idx, k, up, down)
    ref = reference_cd(v0, W, b, c, idx, key, k, up, down)
    for got, want in zip(out, ref, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-11)
    if compiled:  # really compiled, not the eager fall-back
        assert rbm_steps.compiled_cd_step.compiled_calls == calls + 1 and not rbm_steps.compiled_cd_step.failed


@pytest.mark.parametrize("compiled", [False, True])
def test_pcd_step_equals_numpy_reference(compiled):
    v0, W, b, c = _problem(nv=12, nh=25, rows=10, seed=1)  # more hidden than visible units
    chains = (np.random.default_rng(2).random((7, 12)) < 0.5).astype(float)
    idx = torch.arange(17 * 25).view(17, 25)
    key = torch.tensor(-987654321)
    fn = rbm_steps.compiled_pcd_step if compiled else rbm_steps.rbm_pcd_step
    t = [torch.from_numpy(a) for a in (v0, chains, W, b, c)]
    calls = rbm_steps.compiled_pcd_step.compiled_calls
    out = fn(*t, key, idx, 2, 1.0, 1.0)
    ref = reference_pcd(v0, chains, W, b, c, idx, key, 2, 1.0, 1.0)
    for got, want in zip(out, ref, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-11)
    if compiled:
        assert rbm_steps.compiled_pcd_step.compiled_calls == calls + 1 and not rbm_steps.compiled_pcd_step.failed


def test_cd_with_many_steps_approaches_the_exact_gradient():
    """The compiled step's estimator (eager form) is unbiased for CD-k; with large k it nears the exact gradient."""
    from conftest import random_rbm
    from reference import exact_gradient, params

    m = random_rbm(6, 4, scale=0.7, seed=4)
    W, b, c = params(m)
    data = (np.random.default_rng(0).random((4000, 6)) < 0.3).astype(np.float64)
    exact = exact_gradient(W, b, c, data)
    idx = torch.arange(4000 * 6).view(4000, 6)
    dW, db, dc, _ = rbm_steps.rbm_cd_step(torch.from_numpy(data), *(torch.from_numpy(a) for a in (W, b, c)),
                                         torch.tensor(7), idx, 60, 1.0, 1.0)
    assert np.abs(dW.numpy() - exact["W"]).max() < 0.02
    assert np.abs(db.numpy() - exact["vbias"]).max() < 0.03


def _fit(jit, n=210, epochs=3, seed=0, algorithm="pcd", initial_epoch=0, model=None):
    x = bars_and_stripes(n, 3, seed=0)
    if model is None:
        model = RBM(9, 16, seed=1).compile(SGD(0.1, momentum=0.5), algorithm, jit_compile=jit,
                                             **({"n_chains": 30} if algorithm == "pcd" else {}))
    model.fit(x, batch_size=50, epochs=epochs, verbose=0, seed=seed, initial_epoch=initial_epoch)
    return model


@pytest.mark.parametrize("algorithm", ["cd", "pcd"])
def test_compiled_fit_is_reproducible_and_resumable(tmp_path, algorithm):
    a, b = _fit(True, algorithm=algorithm), _fit(True, algorithm=algorithm)  # 210 rows: a partial last batch
    for name in a.param_names:
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.W, _fit(False, algorithm=algorithm).W)  # the compiled path really ran
    half = _fit(True, epochs=2, algorithm=algorithm)
    half.save(tmp_path / "half.pt")
    resumed = _fit(True, epochs=3, initial_epoch=2, algorithm=algorithm, model=RBM.load(tmp_path / "half.pt"))
    assert resumed.trainer.jit_compile is True
    for name in a.param_names:
        assert torch.equal(getattr(a, name), getattr(resumed, name))


def test_jit_compile_auto_compiles_on_cuda_only():
    assert RBM(784, 100).compile().trainer.use_jit_compile() is False  # CPU: eager by default
    assert RBM(9, 16).compile(jit_compile=True).trainer.use_jit_compile() is True
    if torch.cuda.is_available():
        assert RBM(9, 16, device="cuda").compile().trainer.use_jit_compile() is True
    with pytest.raises(ValueError, match="jit_compile"):
        RBM(9, 4).compile(jit_compile="yes")


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    f = CompiledFunction(lambda a, b: a + b, "adder")
    with pytest.warns(RuntimeWarning, match="adder"):
        assert f(torch.tensor(1), torch.tensor(2)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(torch.tensor(2), torch.tensor(2)) == 4
    g = CompiledFunction(lambda a: a.reshape(5), "reshaper")
    with pytest.raises(RuntimeError, match="shape"):  # an error of the function itself propagates
        g(torch.zeros(4))


# --------------------------------------------------------------------------- the eager path's kernels
def _pcg64_cd(v0, W, b, c, seed, k, up, down):
    """CD-k in numpy with the draws of the layer-by-layer path: numpy's PCG64 stream of ``seed``, each
    Gibbs step a hidden block then a visible block."""
    rng = np.random.Generator(np.random.PCG64(seed))
    B, (nv, nh) = len(v0), W.shape
    p0 = _sig(up * v0 @ W + c)
    h = (rng.random((B, nh)) < p0).astype(float)
    a = down * h @ W.T + b
    loss = (np.logaddexp(0, a) - v0 * a).sum(1)
    v = (rng.random((B, nv)) < _sig(a)).astype(float)
    for _ in range(1, k):
        h = (rng.random((B, nh)) < _sig(up * v @ W + c)).astype(float)
        v = (rng.random((B, nv)) < _sig(down * h @ W.T + b)).astype(float)
    p1 = _sig(up * v @ W + c)
    return (v0.T @ p0 - v.T @ p1) / B, (v0 - v).mean(0), (p0 - p1).mean(0), loss, p0


def _pcg64_pcd(v0, chains, W, b, c, seed, k, up, down):
    """PCD-k likewise: the data's hidden sample (for the loss), then k steps of the chains."""
    rng = np.random.Generator(np.random.PCG64(seed))
    B, C, (nv, nh) = len(v0), len(chains), W.shape
    p0 = _sig(up * v0 @ W + c)
    h0 = (rng.random((B, nh)) < p0).astype(float)
    a0 = down * h0 @ W.T + b
    loss = (np.logaddexp(0, a0) - v0 * a0).sum(1)
    v = chains
    for _ in range(k):
        h = (rng.random((C, nh)) < _sig(up * v @ W + c)).astype(float)
        v = (rng.random((C, nv)) < _sig(down * h @ W.T + b)).astype(float)
    p_neg = _sig(up * v @ W + c)
    return (v0.T @ p0 / B - v.T @ p_neg / C), v0.mean(0) - v.mean(0), p0.mean(0) - p_neg.mean(0), loss, v, p0


def _rbm(W, b, c, up, down):
    m = RBM(W.shape[0], W.shape[1], dtype=torch.float64, up_factor=up, down_factor=down)
    with torch.no_grad():
        m.W.copy_(torch.from_numpy(W)), m.vbias.copy_(torch.from_numpy(b)), m.hbias.copy_(torch.from_numpy(c))
    return m


@pytest.mark.parametrize("k,up,down", [(1, 1.0, 1.0), (3, 2.0, 1.0)])
def test_eager_cd_step_draws_the_layer_by_layer_stream(k, up, down):
    """The eager CD step (the fused kernel, uniforms from a RandomSource) equals numpy fed PCG64 draws in the
    order sample_h / sample_v make them: the same seed gives the same run as the model's methods."""
    from natural_bm.rng import RandomSource
    from natural_bm.training.algorithms import ContrastiveDivergence

    v0, W, b, c = _problem(nv=30, nh=20)
    m = _rbm(W, b, c, up, down)
    grads, info, _ = ContrastiveDivergence(k).step(m, torch.from_numpy(v0), None, RandomSource(5))
    dW, db, dc, loss, p0 = _pcg64_cd(v0, W, b, c, 5, k, up, down)
    np.testing.assert_allclose(grads["W"].numpy(), dW, atol=1e-12)
    np.testing.assert_allclose(grads["vbias"].numpy(), db, atol=1e-12)
    np.testing.assert_allclose(grads["hbias"].numpy(), dc, atol=1e-12)
    np.testing.assert_allclose(info.loss.numpy(), loss, rtol=1e-12)
    np.testing.assert_allclose(info.positive[1].numpy(), p0, atol=1e-14)


@pytest.mark.parametrize("k,up,down", [(1, 1.0, 1.0), (2, 1.0, 2.0)])
def test_eager_pcd_step_draws_the_layer_by_layer_stream(k, up, down):
    from natural_bm.rng import RandomSource
    from natural_bm.training.algorithms import ChainState, PersistentContrastiveDivergence

    v0, W, b, c = _problem(nv=30, nh=20)
    chains = (np.random.default_rng(3).random((12, 30)) < 0.5).astype(float)  # C = 12 != B = 16
    m = _rbm(W, b, c, up, down)
    grads, info, state = PersistentContrastiveDivergence(k, 12).step(
        m, torch.from_numpy(v0), ChainState(torch.from_numpy(chains)), RandomSource(9))
    dW, db, dc, loss, v, p0 = _pcg64_pcd(v0, chains, W, b, c, 9, k, up, down)
    np.testing.assert_array_equal(state.chains.numpy(), v)
    np.testing.assert_allclose(grads["W"].numpy(), dW, atol=1e-12)
    np.testing.assert_allclose(grads["vbias"].numpy(), db, atol=1e-12)
    np.testing.assert_allclose(grads["hbias"].numpy(), dc, atol=1e-12)
    np.testing.assert_allclose(info.loss.numpy(), loss, rtol=1e-12)
    np.testing.assert_allclose(info.positive[1].numpy(), p0, atol=1e-14)


@pytest.mark.parametrize("algorithm", ["cd", "pcd"])
def test_workspace_buffers_are_reused_and_change_no_number(algorithm):
    """Two successive eager steps through the algorithm (its Workspace) equal the kernel without buffers,
    bit for bit; the second step writes into the first's buffers; PCD's new chains are not a buffer."""
    from natural_bm.rng import RandomSource
    from natural_bm.training.algorithms import ChainState, ContrastiveDivergence, PersistentContrastiveDivergence

    v0, W, b, c = _problem(nv=30, nh=20)
    m = _rbm(W, b, c, 1.0, 1.0)
    x = torch.from_numpy(v0)
    B, C, nv, nh, k = x.shape[0], 12, 30, 20, 2
    chains0 = torch.from_numpy((np.random.default_rng(3).random((C, nv)) < 0.5).astype(float))
    alg = ContrastiveDivergence(k) if algorithm == "cd" else PersistentContrastiveDivergence(k, C)
    gen, ref_gen = RandomSource(4), RandomSource(4)
    state, ref_chains, seen = (None if algorithm == "cd" else ChainState(chains0.clone())), chains0.clone(), []
    for batch in (x, x.flip(0)):
        grads, info, new_state = alg.step(m, batch, state, gen)
        seen.append((grads["W"].data_ptr(), len(alg._workspace._buffers)))
        if algorithm == "cd":
            u = rbm_steps.source_uniforms(ref_gen, lambda s: [(B, nh)], lambda s: [(B, nv)], x.dtype, x.device)
            dW, db, dc, loss, p0 = rbm_steps.cd_kernel(batch, m.W, m.vbias, m.hbias, k, 1.0, 1.0, u)
        else:
            u = rbm_steps.source_uniforms(ref_gen, lambda s: [(B, nh), (C, nh)] if s == 0 else [(C, nh)],
                                          lambda s: [(C, nv)], x.dtype, x.device)
            dW, db, dc, loss, ref_chains, p0 = rbm_steps.pcd_kernel(batch, ref_chains, m.W, m.vbias, m.hbias, k,
                                                                    1.0, 1.0, u)
            kept = new_state.chains.clone()
        for got, want in ((grads["W"], dW), (grads["vbias"], db), (grads["hbias"], dc), (info.loss, loss),
                          (info.positive[1], p0)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        state = new_state
    assert seen[0] == seen[1]  # the same dW buffer, no new buffers
    if algorithm == "pcd":
        torch.testing.assert_close(state.chains, ref_chains, rtol=0, atol=0)
        alg.step(m, x, state, gen)  # a third step leaves the second's chains as they were
        torch.testing.assert_close(state.chains, kept, rtol=0, atol=0)


def test_uniform_in_place_gives_the_numbers_of_uniform():
    from natural_bm.rng import RandomSource, uniform, uniform_

    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        out = torch.empty(7, 5, dtype=dtype)
        a, b = RandomSource(11), RandomSource(11)
        uniform_(out[:3], a), uniform_(out[3:], a)
        torch.testing.assert_close(out, torch.cat([uniform((3, 5), dtype, b, "cpu"), uniform((4, 5), dtype, b, "cpu")]),
                                   rtol=0, atol=0)
        g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
        torch.testing.assert_close(uniform_(out, g1), uniform((7, 5), dtype, g2, "cpu"), rtol=0, atol=0)


def test_one_fill_gives_the_numbers_of_consecutive_draws_of_its_parts():
    """What the eager kernels' one draw per Gibbs step relies on (``RandomSource.fills_in_sequence``):
    one fill of a flat buffer equals the draws of its blocks in order, also for odd float32 counts (numpy
    makes float32 numbers from halves of 64-bit words); the data-parallel source says it does not."""
    from natural_bm.distributed import ShardedSource
    from natural_bm.rng import RandomSource, uniform

    for dtype in (torch.float32, torch.float64):
        a, b = RandomSource(5), RandomSource(5)
        assert a.fills_in_sequence()
        flat = a.uniform_(torch.empty(3 * 7 + 5 * 3, dtype=dtype))
        parts = [uniform((3, 7), dtype, b, "cpu"), uniform((5, 3), dtype, b, "cpu")]
        torch.testing.assert_close(flat, torch.cat([p.reshape(-1) for p in parts]), rtol=0, atol=0)
    assert not ShardedSource(5).fills_in_sequence()


def test_workspace_keeps_cached_values_and_one_latest_value_per_name():
    """``Workspace.cached`` makes a value once per key; ``latest`` keeps one value per name and remakes it
    when its key changes (so a fit's random source does not pile up over many fits)."""
    ws = rbm_steps.Workspace()
    made = []

    def make(tag):
        made.append(tag)
        return tag

    assert ws.cached(("w", 3), lambda: make("a")) == "a" and ws.cached(("w", 3), lambda: make("b")) == "a"
    assert ws.latest("source", (1,), lambda: make("x")) == "x" and ws.latest("source", (1,), lambda: make("y")) == "x"
    assert ws.latest("source", (2,), lambda: make("z")) == "z"
    assert made == ["a", "x", "z"] and sum(1 for k in ws._buffers if k == "source") == 1
