"""The AIS engine: runs any step kernel of ``ais_steps`` along a schedule of betas.

One loop for every model:

* **compiled** (``key`` given): chunks of ``kernel.steps_per_call`` steps go
  through one ``torch.compile``d call, with uniforms generated in-graph from
  SplitMix64 counters (``natural_bm.rng``); the remaining steps run eagerly on
  the same counters, so the result does not depend on the chunking. On a
  CUDA device the leading chunks are replayed from one CUDA graph
  (``GRAPH_STEPS`` steps a replay; bit-identical to the plain loop).
* **eager** (``gen`` given): one step at a time, uniforms from a PCG64
  ``RandomSource``.

One counter layout: step t of a run r uses the counters
``(t * R + r) * M + j``, j < M = max(units of S, units of K), with r and R
the global run index and count (a shard of runs, ``first_run`` on, uses
the same counters as in a single process); each
SplitMix64 output gives one uniform for each parity (``gibbs_uniforms``):
the larger parity's from the high bits, the smaller's from the next 24.
Eagerly, each step draws the summed parity's uniforms, then the kept's.
The kernels take the model's weights as matrix products (``consts``); on the
CPU in float32 these are oneDNN products with the weights packed once per run
(``natural_bm.onednn.Product``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from tqdm.auto import tqdm

from natural_bm.compiling import CompiledFunction
from natural_bm.estimators.ais_steps import layered_step, pair_step, unit_kinds, unit_sigmas
from natural_bm.rng import RandomSource, gibbs_uniforms

__all__ = ["LAYERED", "PAIR", "AnnealProblem", "AnnealSource", "EngineOptions", "Kernel", "anneal", "problem_layout"]

#: AIS steps captured in one CUDA graph (one replay)
GRAPH_STEPS = 128


def _steps_along(step: Callable) -> Callable:
    """``len(betas) - 1`` consecutive ``step``s along ``betas`` with uniforms from counters ``offset`` on."""

    def steps(state, log_w, consts, betas, key, offset, static, n_S: int, n_K: int, stride: int):
        R = log_w.shape[0]
        M = max(n_S, n_K)
        # the counters are rebuilt here, so the compiled kernels compute them from their loop indices;
        # ``stride`` = (global runs) x M counters per step
        idx = torch.arange(R * M, device=log_w.device, dtype=torch.int64).view(R, M)
        dtype = state[0].dtype
        for s in range(betas.shape[0] - 1):
            u_S, u_K = _parity_uniforms(idx + (offset + s * stride), key, n_S, n_K, dtype)
            state, log_w = step(state, log_w, consts, betas[s + 1], betas[s], u_S, u_K, static)
        return state, log_w

    steps.__name__ = f"{step.__name__}_steps"
    return steps


def _parity_uniforms(index, key, n_S: int, n_K: int, dtype):
    """(u_S (R, n_S), u_K (R, n_K)) from the counters ``index`` (R, max(n_S, n_K))."""
    return gibbs_uniforms(index, key, n_K, n_S, dtype)


@dataclass(frozen=True)
class Kernel:
    """A step kernel with its compiled multi-step form."""

    step: Callable
    steps: CompiledFunction
    steps_per_call: int


#: the two-layer closed form (Salakhutdinov & Murray) and the layered kernel
PAIR = Kernel(pair_step, CompiledFunction(_steps_along(pair_step), "AIS step"), steps_per_call=8)
LAYERED = Kernel(layered_step, CompiledFunction(_steps_along(layered_step), "AIS step (layered)"), steps_per_call=2)


def problem_layout(model, b_A: list, parity: int) -> tuple:
    """How ``model``'s annealing of ``parity`` from the base biases ``b_A`` (one tensor per layer) is laid out
    for the kernels: ``(kernel, matrices to multiply by, the other constants, static, n_S, n_K)``. Two layers
    with the visible layer annealed take the closed form ``PAIR`` (Salakhutdinov & Murray); every other case
    the ``LAYERED`` kernel. The matrices become products (``onednn.Product``) before the kernel sees them.
    One layout for every estimator that anneals (``AIS``, ``raise_log_likelihood``)."""
    m = model
    kept, summed = m.parity_layers(parity), m.parity_layers(1 - parity)
    n_S, n_K = sum(m.layer_sizes[k] for k in summed), sum(m.layer_sizes[k] for k in kept)
    kinds, sigmas = unit_kinds(m), unit_sigmas(m)
    if m.n_layers == 2 and parity == 0:
        W, c, b_B = m.weight(0, 1).detach(), m.bias(1).detach(), m.bias(0).detach()
        return PAIR, (W, W.T), (c, b_A[0], b_B, b_B - b_A[0], *sigmas), kinds, n_S, n_K
    edges = tuple(tuple(e) for e in m.edges)
    weights = tuple(m.weight(*e).detach() for e in edges)
    rest = (tuple(b_A), tuple(b.detach() for b in m.biases), sigmas)
    static = (edges, tuple(kept), tuple(summed), tuple(m.layer_sizes), kinds)
    return LAYERED, weights + tuple(W.T for W in weights), rest, static, n_S, n_K


@dataclass(frozen=True)
class EngineOptions:
    """How an annealing runs, apart from what it estimates (the statistical choices, runs, betas, base
    model and parity, belong to the estimator: ``AIS``, ``log_prob_ais``).

    Attributes:
        jit_compile: compile the annealing steps: True, False (eager), or ``"auto"`` (default): compile when
            betas x runs x (multiply-adds of one Gibbs sweep) reach
            ``natural_bm.compiling.COMPILE_WORK_THRESHOLD``, so small models anneal eagerly without seconds
            of compilation. Compiled and eager runs draw different random numbers (counters against PCG64).
        cuda_graph: on a CUDA device, replay the compiled steps from a CUDA graph (``GRAPH_STEPS`` steps per
            replay). Same numbers, fewer launches.
        packed_weights: on the CPU in float32, multiply through oneDNN with the weights packed once
            (``natural_bm.onednn``; about 1.3x faster products than torch's MKL path on AMD processors).
            False uses ``torch.addmm``. The numbers differ only by float32 rounding.
        distributed: split the runs across the ranks of a ``torch.distributed`` process group (``"auto"``:
            when one with several ranks runs). Each rank anneals its shard with the random numbers those
            runs get in a single process and the log weights are all-gathered.
        log_weight_dtype: dtype of the accumulated log weights (float64).
    """

    jit_compile: bool | str = "auto"
    cuda_graph: bool = True
    packed_weights: bool = True
    distributed: bool | str = "auto"
    log_weight_dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        for name in ("jit_compile", "distributed"):
            if getattr(self, name) not in (True, False, "auto"):
                raise ValueError(f"EngineOptions `{name}` must be True, False or 'auto', got "
                                 f"{getattr(self, name)!r}.")
        if self.log_weight_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"EngineOptions `log_weight_dtype` must be torch.float32 or torch.float64, got "
                             f"{self.log_weight_dtype!r}.")


class AnnealProblem(NamedTuple):
    """What one annealing computes: a step ``kernel`` with its constants.

    Attributes:
        kernel: ``PAIR`` or ``LAYERED``.
        consts: the kernel's constants (matrix products first, ``onednn.Product`` callables).
        static: the kernel's static arguments (layer structure).
        n_summed: units of the parity summed out (n_S).
        n_kept: units of the annealed parity (n_K).
    """

    kernel: Kernel
    consts: tuple
    static: Any
    n_summed: int
    n_kept: int


class AnnealSource(NamedTuple):
    """The random numbers of one annealing: exactly one of ``key`` (compiled, SplitMix64 counters of that
    stream) and ``gen`` (eager, a PCG64 ``RandomSource``). The chains may be a shard: runs ``first_run``
    to ``first_run + R`` of ``total_runs`` (None: all R), which draw the numbers those runs draw in a
    single process."""

    key: int | None = None
    gen: RandomSource | None = None
    first_run: int = 0
    total_runs: int | None = None


def anneal(problem: AnnealProblem, state: tuple, sched: torch.Tensor, source: AnnealSource,
           options: EngineOptions = EngineOptions(), progress: bool = False,
           desc: str = "AIS") -> tuple[tuple, torch.Tensor]:
    """Run the chains ``state`` (kept layers, each (R, n_k)) along ``sched``; returns (state, log weights (R,)).

    ``source`` gives the random numbers (compiled counters or an eager source; the eager source draws
    for every run of ``total_runs`` and keeps this shard's). ``options``: ``cuda_graph`` and
    ``log_weight_dtype`` apply here (the estimator resolves ``jit_compile`` into ``source`` and applies
    ``packed_weights`` and ``distributed``).
    """
    kernel, consts, static, n_S, n_K = problem
    key, gen, first_run, total_runs = source
    log_w_dtype, cuda_graph = options.log_weight_dtype, options.cuda_graph
    dev = state[0].device
    R = state[0].shape[0]
    R_total = R if total_runs is None else int(total_runs)
    log_w = torch.zeros(R, device=dev, dtype=log_w_dtype)
    sched = sched.to(device=dev, dtype=torch.float64)  # exact beta differences
    n_steps = len(sched) - 1
    bar = None
    if progress:
        bar = tqdm(total=n_steps, desc=desc, unit="beta", mininterval=0.5, leave=False)
    dtype = state[0].dtype
    k = 1
    with torch.no_grad():
        if key is not None:
            M = max(n_S, n_K)
            key_t = torch.tensor(key, device=dev, dtype=torch.int64)
            stride = R_total * M
            offsets = torch.arange(n_steps + 1, device=dev, dtype=torch.int64) * stride + first_run * M
            per = kernel.steps_per_call
            args = (consts, static, n_S, n_K, stride)
            if dev.type == "cuda" and cuda_graph:
                state, log_w, k = _anneal_graphed(kernel.steps, state, log_w, args, sched, key_t, offsets, bar, per)
            while k + per - 1 <= n_steps:
                state, log_w = kernel.steps(state, log_w, consts, sched[k - 1 : k + per], key_t, offsets[k], static,
                                            n_S, n_K, stride)
                k += per
                if bar is not None:
                    bar.update(per)
            idx = torch.arange(R * M, device=dev, dtype=torch.int64).view(R, M)
        for j in range(k, n_steps + 1):  # eagerly: every step with ``gen``, the tail with the counters
            if key is not None:
                u_S, u_K = _parity_uniforms(idx + offsets[j], key_t, n_S, n_K, dtype)
            else:
                u_S, u_K = gen.uniform((R_total, n_S), dtype), gen.uniform((R_total, n_K), dtype)
                if R_total != R:
                    u_S, u_K = u_S[first_run : first_run + R], u_K[first_run : first_run + R]
            state, log_w = kernel.step(state, log_w, consts, sched[j], sched[j - 1], u_S, u_K, static)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return state, log_w


def _anneal_graphed(steps, state, log_w, args, sched, key, offsets, bar, per_call: int):
    """Run the leading whole chunks of ``GRAPH_STEPS`` steps as replays of one CUDA graph.

    On a GPU each compiled call still launches its kernels one by one from
    Python (tens of microseconds per step, far more than the arithmetic of a
    100x784x500 step). Here ``calls`` consecutive compiled calls are captured
    once in a ``torch.cuda.CUDAGraph``; before each replay the chunk's betas
    and counter offsets are copied into the graph's static inputs. The result
    is bit-identical to the uncaptured loop (same kernels, same counters).

    Returns ``(state, log_w, k)`` with ``k`` the next step to run (1 if the run
    is too short to be worth a capture).
    """
    consts, static, n_S, n_K, stride = args
    calls = GRAPH_STEPS // per_call
    span = calls * per_call
    n_steps = len(sched) - 1
    n_chunks = n_steps // span
    if n_chunks < 2:
        return state, log_w, 1
    dev = log_w.device
    s_state, s_lw = tuple(t.clone() for t in state), log_w.clone()
    s_beta = sched[: span + 1].clone()
    s_off = offsets[1 : span + 1 : per_call].clone()

    def body():
        st, lw = s_state, s_lw
        for j in range(calls):
            st, lw = steps(st, lw, consts, s_beta[j * per_call : (j + 1) * per_call + 1], key, s_off[j], static,
                           n_S, n_K, stride)
        for target, value in zip(s_state, st, strict=True):
            target.copy_(value)
        s_lw.copy_(lw)

    side = torch.cuda.Stream(device=dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):  # warm-up (compilation, cuBLAS handles) outside the capture
        body()
    torch.cuda.current_stream(dev).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    for target, value in zip(s_state, state, strict=True):
        target.copy_(value)
    s_lw.copy_(log_w)
    k = 1
    for _ in range(n_chunks):
        s_beta.copy_(sched[k - 1 : k + span])
        s_off.copy_(offsets[k : k + span : per_call])
        graph.replay()
        k += span
        if bar is not None:
            bar.update(span)
    return tuple(t.clone() for t in s_state), s_lw.clone(), k
