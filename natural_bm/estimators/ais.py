"""Annealed importance sampling (AIS) of log Z, forward and reverse.

Following Salakhutdinov & Murray (2008), the intermediate distributions of an
RBM with the hidden units summed out are::

    p*_k(v) = exp((1 - beta_k) b_A^T v + beta_k b_B^T v) prod_j (1 + exp(beta_k (c + v^T W)_j))

from the base model A (zero weights, visible biases ``b_A``) at beta = 0 to
the model B at beta = 1. Z_0 = prod_i (1 + e^{b_A,i}) 2^{n_hidden}. The
transition at beta_k is one Gibbs step v -> h -> v of the tempered joint.

Forward AIS starts from exact samples of A and accumulates
log w = sum_k [log p*_k(v_k) - log p*_{k-1}(v_k)]; Z_B / Z_A = E[w], so
log Z_B ~ log Z_A + log mean(w). The estimate of Z is unbiased, hence the
estimate of log Z is biased *low* (Jensen): its log-likelihoods look too
good. Reverse AIS (Burda, Grosse & Salakhutdinov 2015) starts from samples
of B (long Gibbs chains) and anneals to A; it estimates Z_A / Z_B, so its
log Z is biased *high* and its log-likelihoods are conservative.

Implementation: all runs advance together as one (n_runs, n_visible) batch;
each step costs two matrix products (``v W`` is reused by both
log-probabilities and the hidden sample). Each step's log-weight increment
is computed in a form without cancellation (see ``_rbm_ais_math``) and
accumulated in float64 (``log_weight_dtype``), so the 14,500 small
increments keep their precision. The step is
compiled with ``torch.compile``: the elementwise work is fused and the
random numbers are generated in-graph by a counter-based SplitMix64
(``natural_bm.rng.counter_uniform``; torch's own in-graph ``rand_like`` costs
8.5 ns per number on the CPU, SplitMix64 about 1). ``compile=False`` runs the
same maths eagerly with uniforms from numpy's PCG64. On the CPU in float32 the
two products go through oneDNN with ``W`` and ``W^T`` packed once per run
(``natural_bm.onednn``; 1.34x faster than torch's MKL products on the AMD
project machines); on a GPU the compiled steps are replayed from a CUDA graph.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from natural_bm import onednn
from natural_bm.compiling import CompiledFunction
from natural_bm.estimators import ais_dbm
from natural_bm.estimators.tempering import softplus_increment
from natural_bm.rng import RandomSource, gibbs_uniforms, stream_key
from natural_bm.sampling import GibbsSampler
from natural_bm.seeding import new_seed
from natural_bm.validation import as_data_tensor, check_positive_int

__all__ = ["AIS", "default_betas", "effective_sample_size", "log_mean_exp_band"]


def default_betas(n_betas: int | None = None, dtype=torch.float64) -> torch.Tensor:
    """The annealing schedule of Salakhutdinov & Murray's code.

    Steps of 1e-3 from 0 to 0.5, 1e-4 from 0.5 to 0.9 and 1e-5 from 0.9 to 1
    (14,501 distinct betas, 14,500 steps). With ``n_betas`` the same three
    segments keep their share of the steps (500 : 4000 : 10000).
    """
    if n_betas is None:
        segments = [(0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000)]
    else:
        n_betas = check_positive_int(n_betas, "n_betas", minimum=2)
        steps = n_betas - 1
        n1 = max(1, round(steps * 500 / 14500))
        n2 = max(1, round(steps * 4000 / 14500)) if steps > 2 else 0
        n3 = steps - n1 - n2
        if n3 < 1:
            n1, n2, n3 = steps, 0, 0
            segments = [(0.0, 1.0, n1)]
        else:
            segments = [(0.0, 0.5, n1), (0.5, 0.9, n2), (0.9, 1.0, n3)]
    parts = [torch.linspace(lo, hi, n + 1, dtype=torch.float64)[:-1] for lo, hi, n in segments if n > 0]
    return torch.cat([*parts, torch.ones(1, dtype=torch.float64)]).to(dtype)


def log_mean_exp_band(log_w: torch.Tensor, n_sigma: float = 3.0) -> tuple[float, float, float]:
    """log mean(w), log(mean(w) - n_sigma se), log(mean(w) + n_sigma se) from log weights.

    The standard error is that of the weights themselves, std(w) / sqrt(n),
    as in Salakhutdinov & Murray (2008); the band is not symmetric in log
    space and its lower end is -inf when mean(w) - n_sigma se <= 0.
    """
    lw = log_w.double().cpu()
    m = float(lw.max())
    w = torch.exp(lw - m)
    mean = float(w.mean())
    se = float(w.std(unbiased=True)) / math.sqrt(len(w)) if len(w) > 1 else 0.0
    lo = mean - n_sigma * se
    return (
        m + math.log(mean),
        m + math.log(lo) if lo > 0 else -math.inf,
        m + math.log(mean + n_sigma * se),
    )


def _rbm_ais_math(v, log_w, W, c, b_A, b_B, d_b, b_new, b_old, u_h, u_v, tok_w=None, tok_wt=None):
    """One AIS step for an RBM: weight update at (b_new vs b_old), then a Gibbs step at b_new.

    Shapes: v (R, nv), log_w (R,), W (nv, nh), c (nh,), b_A, b_B, d_b = b_B - b_A
    (nv,), b_new and b_old 0-d tensors, u_h (R, nh) and u_v (R, nv) uniforms.
    ``tok_w`` and ``tok_wt``: tokens of ``W`` and ``W.T`` packed by oneDNN
    (``natural_bm.onednn``), or None for ``torch.addmm``.

    The increment log p*_new(v) - log p*_old(v) is computed without
    cancellation (``softplus_increment``, reusing the sigmoid needed for the
    hidden sample) and summed into ``log_w`` in its own dtype (float64).
    """
    x = onednn.addmm(c, v, W, tok_w)  # (R, nh), shared by the weight update and the hidden sample
    bn = b_new.to(x.dtype)
    db = (b_new - b_old).to(x.dtype)
    p_h = torch.sigmoid(bn * x)
    inc = (db * (v @ d_b)).to(log_w.dtype) + softplus_increment(p_h, db * x).sum(1).to(log_w.dtype)
    log_w = log_w + inc
    h = (u_h < p_h).to(v.dtype)
    act = (1 - bn) * b_A + bn * onednn.addmm(b_B, h, W.T, tok_wt)
    v = (u_v < torch.sigmoid(act)).to(v.dtype)
    return v, log_w


def effective_sample_size(log_w: torch.Tensor) -> float:
    """Kish's effective sample size of importance weights given as logs: (sum w)^2 / sum w^2.

    Between 1 (one run carries all the weight) and ``len(log_w)`` (equal
    weights). With 100 runs, the -3 sigma band of ``log_mean_exp_band``
    reaches zero weight (its lower end is -inf) once this falls to about 8.
    """
    lw = torch.as_tensor(log_w).double().cpu()
    if lw.ndim != 1 or lw.numel() == 0:
        raise ValueError(f"`log_w` must be a non-empty 1-D tensor of log weights, got shape {tuple(lw.shape)}.")
    if bool(torch.isnan(lw).any()) or bool((lw == math.inf).any()):
        raise ValueError("`log_w` contains NaN or +inf; log weights must be finite or -inf (zero weight).")
    return float(torch.exp(2 * torch.logsumexp(lw, 0) - torch.logsumexp(2 * lw, 0)))


#: below this effective sample size (and half the runs) an AIS estimate comes with a warning
MIN_EFFECTIVE_SAMPLE_SIZE = 10.0


def _warn_if_unreliable(log_w: torch.Tensor, direction: str) -> float:
    """Warn when a few runs carry the estimate; returns the effective sample size."""
    ess = effective_sample_size(log_w)
    n = len(log_w)
    if ess < min(MIN_EFFECTIVE_SAMPLE_SIZE, n / 2):
        bias = ("too low (test log-likelihoods too good)" if direction == "forward"
                else "too high (test log-likelihoods too pessimistic)")
        warnings.warn(
            f"{direction} AIS: {ess:.1f} effective runs of {n} carry the estimate, so its error band is not "
            f"trustworthy and log Z is likely {bias}. Anneal with more betas (n_betas) or runs (n_runs), and "
            "compare forward and reverse AIS (AIS.estimate_bracket).",
            RuntimeWarning,
            stacklevel=3,
        )
    return ess


#: AIS steps per compiled call (the per-call cost of the compiled function is shared by them)
STEPS_PER_CALL = 8


def _rbm_ais_steps_counter(v, log_w, W, c, b_A, b_B, d_b, betas, idx, key, offset, tok_w=None, tok_wt=None):
    """``len(betas) - 1`` consecutive ``_rbm_ais_math`` steps along ``betas`` (b0 -> b1 -> ...),
    with uniforms from SplitMix64 counters ``idx + offset`` (the compiled path).

    Each 64-bit output gives two 24-bit uniforms (max(nh, nv) counters per run
    and step, although inductor recomputes the hash in the step's hidden and
    visible kernels rather than storing it). Several steps per call share
    the per-call overhead of the compiled function.
    """
    R, nv = v.shape
    nh = W.shape[1]
    M = idx.shape[1]
    # ``idx`` is arange(R * M); rebuilt here, the compiled kernels compute the
    # counters from their loop indices instead of reading 627 KB twice a step
    idx = torch.arange(R * M, device=v.device, dtype=torch.int64).view(R, M)
    for s in range(betas.shape[0] - 1):
        u_h, u_v = gibbs_uniforms(idx + (offset + s * R * M), key, nv, nh, v.dtype)
        v, log_w = _rbm_ais_math(v, log_w, W, c, b_A, b_B, d_b, betas[s + 1], betas[s], u_h, u_v, tok_w, tok_wt)
    return v, log_w


#: AIS steps captured in one CUDA graph (one replay)
GRAPH_STEPS = 128


def _anneal_graphed(step, v, log_w, consts, sched, idx, key, offsets, progress_bar, per_call: int):
    """Run the leading whole chunks of ``GRAPH_STEPS`` steps as replays of one CUDA graph.

    On a GPU each compiled call still launches its kernels one by one from
    Python (tens of microseconds per step, far more than the arithmetic of a
    100x784x500 step). Here ``calls`` consecutive compiled calls are captured
    once in a ``torch.cuda.CUDAGraph``; before each replay the chunk's betas
    and counter offsets are copied into the graph's static inputs. The result
    is bit-identical to the uncaptured loop (same kernels, same counters).

    Returns ``(v, log_w, k)`` with ``k`` the next step to run (1 if the run is
    too short to be worth a capture).
    """
    calls = GRAPH_STEPS // per_call
    span = calls * per_call
    n_steps = len(sched) - 1
    n_chunks = n_steps // span
    if n_chunks < 2:
        return v, log_w, 1
    s_v, s_lw = v.clone(), log_w.clone()
    s_beta = sched[: span + 1].clone()
    s_off = offsets[1 : span + 1 : per_call].clone()

    def body():
        vv, lw = s_v, s_lw
        for j in range(calls):
            vv, lw = step(vv, lw, *consts, s_beta[j * per_call : (j + 1) * per_call + 1], idx, key, s_off[j])
        s_v.copy_(vv)
        s_lw.copy_(lw)

    side = torch.cuda.Stream(device=v.device)
    side.wait_stream(torch.cuda.current_stream(v.device))
    with torch.cuda.stream(side):  # warm-up (compilation, cuBLAS handles) outside the capture
        body()
    torch.cuda.current_stream(v.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    s_v.copy_(v)
    s_lw.copy_(log_w)
    k = 1
    for _ in range(n_chunks):
        s_beta.copy_(sched[k - 1 : k + span])
        s_off.copy_(offsets[k : k + span : per_call])
        graph.replay()
        k += span
        if progress_bar is not None:
            progress_bar.update(span)
    return s_v.clone(), s_lw.clone(), k


#: the compiled step (one ``torch.compile`` object serves every device, shape and dtype)
_COMPILED_STEP = CompiledFunction(_rbm_ais_steps_counter, "AIS step")


class AIS:
    """AIS estimate of an RBM's log partition function, with error bars.

    Args:
        model: an ``RBM`` or a ``DBM`` (annealed on its smaller parity with the
            other summed out; see ``natural_bm.estimators.ais_dbm``).
        data: training data for the ``"data"`` base model (its smoothed pixel means).
        n_runs: number of independent annealing runs (importance weights).
        n_betas: number of inverse temperatures of the default schedule
            (None: Salakhutdinov & Murray's 14,501).
        betas: an explicit increasing schedule from 0 to 1 (overrides ``n_betas``).
        base: ``"data"`` (zero weights and hidden biases, visible biases
            logit((sum x + 1) / (n + 2)) of the data: the base-rate model) or
            ``"uniform"`` (all biases zero). ``"data"`` without data falls back
            to ``"uniform"`` with a warning.
        seed: seed of the random numbers (None: fresh).
        compile: compile the annealing step: True, False (eager), or ``"auto"``
            (default): compile when betas x runs x (multiply-adds of one Gibbs
            sweep) reach ``natural_bm.compiling.COMPILE_WORK_THRESHOLD``, so small
            models anneal eagerly without seconds of compilation. Compiled and
            eager runs draw different random numbers (counters against PCG64).
        progress: show a tqdm progress bar.
        log_weight_dtype: dtype of the accumulated log weights (float64).
        cuda_graph: on a CUDA device, replay the compiled steps from a CUDA
            graph (128 steps per replay; default True). Same numbers, fewer launches.
        packed_weights: on the CPU in float32, multiply through oneDNN with
            the weights packed once (``natural_bm.onednn``; default True, about
            1.3x faster products than torch's MKL path on AMD processors).
            False uses ``torch.addmm``. The numbers differ only by float32 rounding.

    After ``run_logZ()``: ``log_w`` (n_runs,) forward log weights, ``logZ`` and
    ``ess``, the weights' effective sample size (``effective_sample_size``);
    after ``run_reverse()`` likewise ``log_w_reverse``, ``logZ_reverse`` and
    ``ess_reverse``. Either run warns (RuntimeWarning) when fewer than 10
    effective runs (and fewer than half the runs) carry its estimate.
    """

    def __init__(
        self,
        model,
        data=None,
        n_runs: int = 100,
        n_betas: int | None = None,
        betas=None,
        base: str = "data",
        seed: int | None = None,
        compile: bool | str = "auto",
        progress: bool = True,
        log_weight_dtype: torch.dtype = torch.float64,
        cuda_graph: bool = True,
        packed_weights: bool = True,
    ) -> None:
        model.check_finite("AIS")
        self.model = model
        self.n_runs = check_positive_int(n_runs, "n_runs")
        if betas is not None:
            betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
            if len(betas) < 2 or betas[0] != 0 or betas[-1] != 1 or bool((betas[1:] < betas[:-1]).any()):
                raise ValueError("`betas` must increase from 0 to 1 (at least two values).")
            self.betas = betas
        else:
            self.betas = default_betas(n_betas)
        if base not in ("data", "uniform"):
            raise ValueError(f"`base` must be 'data' or 'uniform', got {base!r}.")
        device, dtype = model.device, model.dtype
        # deeper models anneal one parity with the other summed out (ais_dbm); two layers keep the
        # visible layer and sum out the hidden one, in the closed form of Salakhutdinov & Murray
        self.is_dbm = model.n_layers > 2
        if base == "data" and data is None:
            warnings.warn("AIS base='data' needs `data`; using the uniform base model.", RuntimeWarning, stacklevel=2)
            base = "uniform"
        self.base = base
        if base == "data":
            x = as_data_tensor(data, "data", model.n_visible, device=device, dtype=torch.float64)
            p = (x.sum(0) + 1.0) / (x.shape[0] + 2.0)
            self.base_vbias = (torch.log(p) - torch.log1p(-p)).to(dtype)
        else:
            self.base_vbias = torch.zeros(model.n_visible, device=device, dtype=dtype)
        self.seed = new_seed() if seed is None else int(seed)
        if compile not in (True, False, "auto"):
            raise ValueError(f"`compile` must be True, False or 'auto', got {compile!r}.")
        if compile == "auto":
            from natural_bm.compiling import worth_compiling

            compile = worth_compiling(len(self.betas) * self.n_runs * model.sweep_multiply_adds())
        self.compile = compile
        self.progress = progress
        self.log_weight_dtype = log_weight_dtype
        self.cuda_graph = bool(cuda_graph)
        self.packed_weights = bool(packed_weights)
        self.log_w: torch.Tensor | None = None
        self.log_w_reverse: torch.Tensor | None = None
        self.ess: float | None = None
        self.ess_reverse: float | None = None

    # ------------------------------------------------------------------ base model
    @property
    def log_z_base(self) -> float:
        """log Z of the base model (with the hidden units of the target): nats."""
        if self.is_dbm:
            return ais_dbm.log_z_base(ais_dbm.base_biases(self.model, self.base_vbias))
        return float(F.softplus(self.base_vbias.double()).sum()) + self.model.layer_sizes[1] * math.log(2.0)

    # ------------------------------------------------------------------ annealing
    def _anneal(self, v, schedule: torch.Tensor, stream: int) -> torch.Tensor:
        """Run the chains ``v`` along ``schedule`` (forward or reversed); returns log weights.

        Compiled: uniforms from SplitMix64 counters (key from ``seed`` and
        ``stream``). Eager: uniforms from a PCG64 ``RandomSource``. DBMs: ``v``
        is a list of layer states (the kept parity filled); ``ais_dbm`` anneals them.
        """
        m = self.model
        if self.is_dbm:
            b_A = ais_dbm.base_biases(m, self.base_vbias)
            source = {"key": stream_key(self.seed, stream)} if self.compile else {"gen": self._source(stream)}
            return ais_dbm.anneal(m, v, schedule, b_A, self.log_weight_dtype, self.progress,
                                  packed_weights=self.packed_weights, **source)
        dev = m.device
        step = _COMPILED_STEP if self.compile else None
        W, c, b_B = m.weight(0, 1).detach(), m.bias(1).detach(), m.bias(0).detach()
        b_A = self.base_vbias
        d_b = b_B - b_A
        log_w = torch.zeros(v.shape[0], device=dev, dtype=self.log_weight_dtype)
        sched = schedule.to(device=dev, dtype=torch.float64)  # exact beta differences
        n_steps = len(sched) - 1
        iterator = range(1, n_steps + 1)
        if self.progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator if step is None else None, total=n_steps, desc="AIS", unit="beta",
                            mininterval=0.5, leave=False)
        R, (nv, nh) = v.shape[0], m.layer_sizes
        with torch.no_grad(), onednn.packed_tokens((W, W.T), R, self.packed_weights) as toks:
            if step is not None:
                M = max(nh, nv)
                idx = torch.arange(R * M, device=dev, dtype=torch.int64).view(R, M)
                key = torch.tensor(stream_key(self.seed, stream), device=dev, dtype=torch.int64)
                offsets = torch.arange(n_steps + 1, device=dev, dtype=torch.int64) * (R * M)
                k, per = 1, STEPS_PER_CALL
                if dev.type == "cuda" and self.cuda_graph:
                    v, log_w, k = _anneal_graphed(step, v, log_w, (W, c, b_A, b_B, d_b), sched, idx, key,
                                                  offsets, iterator if self.progress else None, per)
                while k + per - 1 <= n_steps:  # STEPS_PER_CALL steps per compiled call
                    v, log_w = step(v, log_w, W, c, b_A, b_B, d_b, sched[k - 1 : k + per], idx, key, offsets[k], *toks)
                    k += per
                    if self.progress:
                        iterator.update(per)
                for j in range(k, n_steps + 1):  # the remaining steps eagerly, same counters
                    u_h, u_v = gibbs_uniforms(idx + offsets[j], key, nv, nh, v.dtype)
                    v, log_w = _rbm_ais_math(v, log_w, W, c, b_A, b_B, d_b, sched[j], sched[j - 1], u_h, u_v, *toks)
                    if self.progress:
                        iterator.update(1)
            else:
                gen = self._source(stream)
                for k in iterator:
                    u_h, u_v = gen.uniform((R, nh), v.dtype), gen.uniform((R, nv), v.dtype)
                    v, log_w = _rbm_ais_math(v, log_w, W, c, b_A, b_B, d_b, sched[k], sched[k - 1], u_h, u_v, *toks)
        if self.progress:
            iterator.close()
        return log_w

    def _source(self, stream: int) -> RandomSource:
        """The eager random source of ``stream`` of this AIS's seed."""
        return RandomSource(stream_key(self.seed, stream) & (2**62 - 1), self.model.device)

    def _seeded(self, offset: int):
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        ctx = torch.random.fork_rng(devices=devices)
        ctx.__enter__()
        torch.manual_seed((self.seed + offset) % 2**63)
        return ctx

    def run_logZ(self) -> float:
        """Forward AIS from the base model to the model; returns the log Z estimate (nats)."""
        m = self.model
        ctx = self._seeded(0)
        try:
            if self.is_dbm:
                v = ais_dbm.initial_states(m, ais_dbm.base_biases(m, self.base_vbias), self.n_runs, self._source(0))
            else:
                p = torch.sigmoid(self.base_vbias).expand(self.n_runs, m.n_visible)
                v = torch.bernoulli(p).to(m.dtype)
            self.log_w = self._anneal(v, self.betas, stream=1)
        finally:
            ctx.__exit__(None, None, None)
        self.logZ = self.log_z_base + float(torch.logsumexp(self.log_w, 0)) - math.log(self.n_runs)
        self.ess = _warn_if_unreliable(self.log_w, "forward")
        return self.logZ

    def estimate_log_error_Z(self, n_sigma: float = 3.0) -> tuple[float, float, float]:
        """(log Z, log Z at -n_sigma, log Z at +n_sigma) from the forward weights (runs AIS if needed)."""
        if self.log_w is None:
            self.run_logZ()
        mean, lo, hi = log_mean_exp_band(self.log_w, n_sigma)
        return self.log_z_base + mean, self.log_z_base + lo, self.log_z_base + hi

    def model_samples(self, v_init=None, n_gibbs: int = 1000, data=None) -> torch.Tensor:
        """``n_runs`` approximate samples of the model: Gibbs chains run ``n_gibbs`` steps.

        Chains start from ``v_init`` (e.g. PCD's persistent chains), else from
        random rows of ``data`` (binarised by sampling), else from the base model.
        """
        m = self.model
        sampler = GibbsSampler(m)
        n_gibbs = check_positive_int(n_gibbs, "n_gibbs", minimum=0)
        if v_init is not None and isinstance(v_init, (list, tuple)):  # chains: one state per layer
            states = sampler.run([s[: self.n_runs].clone() if s is not None else None for s in v_init], n_gibbs)
            return states if self.is_dbm else states[0]
        if v_init is not None:
            v = as_data_tensor(v_init, "v_init", m.n_visible, device=m.device, dtype=m.dtype)
            if v.shape[0] != self.n_runs:
                v = v[torch.randint(0, v.shape[0], (self.n_runs,), device=v.device)]
            v = torch.bernoulli(v)
        elif data is not None:
            x = as_data_tensor(data, "data", m.n_visible, device=m.device, dtype=m.dtype)
            v = torch.bernoulli(x[torch.randint(0, x.shape[0], (self.n_runs,), device=x.device)])
        else:
            v = torch.bernoulli(torch.sigmoid(self.base_vbias).expand(self.n_runs, m.n_visible)).to(m.dtype)
        states = sampler.run(sampler.init_chains(v), n_gibbs)
        return states if self.is_dbm else states[0]

    def run_reverse(self, v_init=None, n_gibbs: int = 1000, data=None) -> float:
        """Reverse AIS from model samples to the base model; returns its log Z estimate (nats).

        Biased high in expectation (conservative log-likelihoods) when the
        starting samples come from the model; see ``model_samples`` for the start.
        """
        ctx = self._seeded(1)
        try:
            v = self.model_samples(v_init, n_gibbs, data)
            self.log_w_reverse = self._anneal(v, torch.flip(self.betas, [0]), stream=2)
        finally:
            ctx.__exit__(None, None, None)
        # E[w_rev] = Z_A / Z_B
        self.logZ_reverse = self.log_z_base - (
            float(torch.logsumexp(self.log_w_reverse, 0)) - math.log(self.n_runs)
        )
        self.ess_reverse = _warn_if_unreliable(self.log_w_reverse, "reverse")
        return self.logZ_reverse

    def estimate_log_error_Z_reverse(self, n_sigma: float = 3.0) -> tuple[float, float, float]:
        """(log Z, lower, upper) from the reverse weights (runs reverse AIS if needed)."""
        if self.log_w_reverse is None:
            self.run_reverse()
        mean, lo, hi = log_mean_exp_band(self.log_w_reverse, n_sigma)
        return self.log_z_base - mean, self.log_z_base - hi, self.log_z_base - lo

    def estimate_bracket(self, x=None, v_init=None, n_gibbs: int = 1000, data=None) -> dict:
        """Forward and reverse log Z, and the log-likelihoods of ``x`` they imply.

        Returns a dict with ``logZ_forward``, ``logZ_reverse``, ``gap``
        (reverse minus forward, nats), ``ess_forward`` and ``ess_reverse``
        (effective sample sizes of the two sets of weights) and, with ``x``, ``ll_forward`` (too
        optimistic in expectation), ``ll_reverse`` (conservative) and
        ``ll_stderr``. A large ``gap`` means the estimates cannot be trusted:
        anneal with more betas or runs.
        """
        if self.log_w is None:
            self.run_logZ()
        if self.log_w_reverse is None:
            self.run_reverse(v_init, n_gibbs, data)
        out = {"logZ_forward": self.logZ, "logZ_reverse": self.logZ_reverse, "gap": self.logZ_reverse - self.logZ,
               "ess_forward": self.ess, "ess_reverse": self.ess_reverse}
        if x is not None:
            from natural_bm.estimators.likelihood import log_likelihood

            ll_f, se = log_likelihood(self.model, x, self.logZ)
            out.update(ll_forward=ll_f, ll_reverse=ll_f - out["gap"], ll_stderr=se)
        return out



def describe_bracket(log_z_forward: float, log_z_reverse: float) -> str:
    """How forward and reverse AIS estimates of one log Z relate, in words.

    Forward AIS under-estimates log Z in expectation and reverse AIS, started
    from the model's own distribution, over-estimates it, so reverse >=
    forward brackets log Z (and the log-likelihoods between them). Reverse <
    forward means the two cross: at least one run did not anneal well
    (typically the reverse chains did not start from the model's
    distribution), and neither number is a bound.
    """
    gap = log_z_reverse - log_z_forward
    if gap >= 0:
        return f"bracket: log Z in [{log_z_forward:.4f}, {log_z_reverse:.4f}] (width {gap:.4f} nats)"
    return (f"no bracket: reverse AIS is {-gap:.4f} nats below forward AIS (they cross), so neither is a bound; "
            f"anneal longer or start the reverse chains from the model's own samples")
