"""Annealed importance sampling (AIS) of log Z, forward and reverse.

Following Salakhutdinov & Murray (2008), AIS moves from a base model A
(no weights; visible biases from the data, or zero) at beta = 0 to the model
B at beta = 1 through the tempered distributions of ``ais_steps`` (one
parity annealed, the other summed out analytically; for two layers the
visible layer is annealed and the hidden one summed out by default; ``parity``
chooses).

Forward AIS starts from exact samples of A and accumulates
log w = sum_k [log p*_k(x_k) - log p*_{k-1}(x_k)]; Z_B / Z_A = E[w], so
log Z_B ~ log Z_A + log mean(w). The estimate of Z is unbiased, hence the
estimate of log Z is biased *low* (Jensen): its log-likelihoods look too
good. Reverse AIS (Burda, Grosse & Salakhutdinov 2015) starts from samples
of B (Gibbs chains) and anneals to A; it estimates Z_A / Z_B, so its log Z is
biased *high* and its log-likelihoods are conservative.

The files, by job: ``ais_schedule`` (the betas), ``ais_steps`` (one step's
maths), ``ais_engine`` (the loop: compiled chunks with in-graph SplitMix64
counters, eager tail, CUDA-graph replay, oneDNN packed products),
``ais_weights`` (band, effective sample size), and this class. Every random
number comes from the seed: the starting states from a ``RandomSource`` of
stream 0 (forward) or 3 (reverse), the annealing from stream 1 (forward) or
2 (reverse).
"""

from __future__ import annotations

import math

import torch

from natural_bm import distributed as dist
from natural_bm import onednn
from natural_bm.compiling import worth_compiling
from natural_bm.estimators import ais_engine
from natural_bm.estimators.ais_engine import AnnealProblem, AnnealSource, EngineOptions
from natural_bm.estimators.ais_schedule import betas_or_default, default_betas
from natural_bm.estimators.ais_steps import annealed_parity, base_biases, base_visible_bias, log_z_base
from natural_bm.estimators.ais_weights import (
    MIN_EFFECTIVE_SAMPLE_SIZE,
    effective_sample_size,
    log_mean_exp_band,
    warn_if_unreliable,
)
from natural_bm.estimators.likelihood import log_likelihood
from natural_bm.rng import RandomSource, stream_key
from natural_bm.sampling import GibbsSampler
from natural_bm.seeding import new_seed
from natural_bm.validation import as_data_tensor, check_positive_int

__all__ = ["AIS", "MIN_EFFECTIVE_SAMPLE_SIZE", "EngineOptions", "default_betas", "describe_bracket",
           "effective_sample_size", "log_mean_exp_band"]

#: random streams of one seed
FORWARD_START, FORWARD_ANNEAL, REVERSE_ANNEAL, REVERSE_START = 0, 1, 2, 3

#: sharded AIS splits the runs in blocks of this many (``distributed.shard_bounds``)
SHARD_ALIGN = 16


class AIS:
    """AIS estimate of an RBM's log partition function, with error bars.

    Args:
        model: any model of the layered core (``RBM``, ``DBM``): two layers anneal the
            visible layer with the hidden one summed out; deeper models anneal the parity
            with fewer units with the other summed out (``ais_steps``).
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
        parity: the layers annealed (``ais_steps.annealed_parity``): ``"auto"`` (the visible layer
            of an RBM; the parity with fewer units of a deeper model, h1 of 784-500-1000), 0 (the
            even layers: v and h2 of a DBM, h1 summed out) or 1 (the odd layers). The two choices
            are different estimators of one log Z, so their agreement is a check; summing out a
            layer whose units have large biases or weights takes them off the annealing path.
        progress: show a tqdm progress bar.
        engine: how the annealing runs (``EngineOptions``: compiled or eager steps, CUDA-graph replay,
            oneDNN packed products, runs split over a process group, the log weights' dtype); None: the
            defaults. With one thread per process, runs split over 2 gloo processes give log weights
            bit-identical to a single process's (tested).

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
        parity: int | str = "auto",
        progress: bool = True,
        engine: EngineOptions | None = None,
    ) -> None:
        model.check_finite("AIS")
        self.model = model
        self.parity = annealed_parity(model, parity)
        self.n_runs = check_positive_int(n_runs, "n_runs")
        self.betas = betas_or_default(betas, n_betas)
        self.base_vbias, self.base = base_visible_bias(model, data, base)
        self.seed = new_seed() if seed is None else int(seed)
        self.progress = progress
        if engine is None:
            engine = EngineOptions()
        elif not isinstance(engine, EngineOptions):
            raise TypeError(f"`engine` must be an EngineOptions or None, got {type(engine).__name__}.")
        self.engine = engine
        jit = engine.jit_compile
        #: whether the annealing steps run compiled (``engine.jit_compile`` resolved)
        self.jit_compile = worth_compiling(len(self.betas) * self.n_runs * model.sweep_multiply_adds()) \
            if jit == "auto" else bool(jit)
        #: whether the runs are split over a process group (``engine.distributed`` resolved)
        self.distributed = dist.is_distributed() if engine.distributed == "auto" else bool(engine.distributed)
        self.log_w: torch.Tensor | None = None
        self.log_w_reverse: torch.Tensor | None = None
        self.ess: float | None = None
        self.ess_reverse: float | None = None

    # ------------------------------------------------------------------ base model
    @property
    def log_z_base(self) -> float:
        """log Z of the base model (with every unit of the target), in nats."""
        return log_z_base(self.model, base_biases(self.model, self.base_vbias))

    # ------------------------------------------------------------------ annealing
    @property
    def annealed_layers(self) -> list[int]:
        """The layers AIS anneals (``ais_steps.annealed_parity``)."""
        return self.model.parity_layers(self.parity)

    def _problem(self):
        """(kernel, matrices to multiply by, the other constants, static, n_S, n_K) of this model
        (``ais_engine.problem_layout``)."""
        return ais_engine.problem_layout(self.model, base_biases(self.model, self.base_vbias), self.parity)

    def _anneal(self, state: tuple, schedule: torch.Tensor, stream: int) -> torch.Tensor:
        """Run the chains ``state`` (the kept layers' states) along ``schedule`` (forward or reversed);
        returns the log weights. Compiled: SplitMix64 counters of ``stream``; eager: a PCG64 source."""
        kernel, mats, rest, static, n_S, n_K = self._problem()
        lo, hi = dist.shard_bounds(self.n_runs, align=SHARD_ALIGN) if self.distributed else (0, self.n_runs)
        if hi == lo:  # more ranks than blocks of runs: this rank has none
            empty = torch.zeros(0, dtype=self.engine.log_weight_dtype, device=state[0].device)
            return dist.all_gather_rows(empty)
        if self.jit_compile:
            source = AnnealSource(key=stream_key(self.seed, stream), first_run=lo, total_runs=self.n_runs)
        else:
            source = AnnealSource(gen=self._source(stream), first_run=lo, total_runs=self.n_runs)
        state = tuple(s[lo:hi] for s in state)
        with onednn.packed_products(mats, hi - lo, self.engine.packed_weights) as products:
            # the pair kernel takes (mm_W, mm_Wt, ...), the layered one (products of W, products of W^T, ...)
            half = len(products) // 2
            mms = products if kernel is ais_engine.PAIR else (products[:half], products[half:])
            problem = AnnealProblem(kernel, (*mms, *rest), static, n_S, n_K)
            _, log_w = ais_engine.anneal(problem, tuple(state), schedule, source, self.engine,
                                         progress=self.progress)
        return dist.all_gather_rows(log_w) if self.distributed else log_w

    def _source(self, stream: int) -> RandomSource:
        """The eager random source of ``stream`` of this AIS's seed."""
        return RandomSource(stream_key(self.seed, stream) & (2**62 - 1), self.model.device)

    def _kept(self, states: list) -> tuple:
        """The kept layers of full states (one tensor per layer), in order."""
        return tuple(states[k] for k in self.annealed_layers)

    def run_logZ(self) -> float:
        """Forward AIS from the base model to the model; returns the log Z estimate (nats)."""
        m = self.model
        gen = self._source(FORWARD_START)
        b_A = base_biases(m, self.base_vbias)
        state = tuple(m.units[k].sample(b_A[k].expand(self.n_runs, -1).contiguous(), 1.0, gen)
                      for k in self.annealed_layers)
        self.log_w = self._anneal(state, self.betas, stream=FORWARD_ANNEAL)
        self.logZ = self.log_z_base + float(torch.logsumexp(self.log_w, 0)) - math.log(self.n_runs)
        self.ess = warn_if_unreliable(self.log_w, "forward")
        return self.logZ

    def estimate_log_error_Z(self, n_sigma: float = 3.0) -> tuple[float, float, float]:
        """(log Z, log Z at -n_sigma, log Z at +n_sigma) from the forward weights (runs AIS if needed)."""
        if self.log_w is None:
            self.run_logZ()
        mean, lo, hi = log_mean_exp_band(self.log_w, n_sigma)
        return self.log_z_base + mean, self.log_z_base + lo, self.log_z_base + hi

    def model_samples(self, v_init=None, n_gibbs: int = 1000, data=None) -> list:
        """``n_runs`` approximate samples of the model, as full states (one tensor per layer):
        Gibbs chains run ``n_gibbs`` sweeps (``natural_bm.sampling.GibbsSampler``).

        Chains start from ``v_init`` (chains as a list of layer states, or visible rows such as
        PCD's persistent chains), else from random rows of ``data`` (binarised by sampling), else
        from the base model. The random numbers come from stream 3 of the seed.
        """
        m = self.model
        gen = self._source(REVERSE_START)
        sampler = GibbsSampler(m)
        n_gibbs = check_positive_int(n_gibbs, "n_gibbs", minimum=0)
        if v_init is not None and isinstance(v_init, (list, tuple)):  # chains: one state per layer
            chains = [s[: self.n_runs].clone() if s is not None else None for s in v_init]
        else:
            if v_init is not None:
                v = as_data_tensor(v_init, "v_init", m.n_visible, device=m.device, dtype=m.dtype,
                                   value_range=m.data_range)
                if v.shape[0] != self.n_runs:
                    v = v[gen.randint(v.shape[0], (self.n_runs,)).to(v.device)]
                v = m.units[0].states_from_data(v, gen)
            elif data is not None:
                x = as_data_tensor(data, "data", m.n_visible, device=m.device, dtype=m.dtype,
                                   value_range=m.data_range)
                v = m.units[0].states_from_data(x[gen.randint(x.shape[0], (self.n_runs,)).to(x.device)], gen)
            else:
                v = m.units[0].sample(self.base_vbias.expand(self.n_runs, m.n_visible).contiguous(), 1.0, gen)
            chains = sampler.init_chains(v, gen)
        return sampler.run(chains, n_gibbs, gen)

    def run_reverse(self, v_init=None, n_gibbs: int = 1000, data=None) -> float:
        """Reverse AIS from model samples to the base model; returns its log Z estimate (nats).

        Biased high in expectation (conservative log-likelihoods) when the
        starting samples come from the model; see ``model_samples`` for the start.
        """
        states = self.model_samples(v_init, n_gibbs, data)
        self.log_w_reverse = self._anneal(self._kept(states), torch.flip(self.betas, [0]), stream=REVERSE_ANNEAL)
        # E[w_rev] = Z_A / Z_B
        self.logZ_reverse = self.log_z_base - (
            float(torch.logsumexp(self.log_w_reverse, 0)) - math.log(self.n_runs)
        )
        self.ess_reverse = warn_if_unreliable(self.log_w_reverse, "reverse")
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
            ll_f, se = log_likelihood(self.model, x, self.logZ)
            out.update(ll_forward=ll_f, ll_reverse=ll_f - out["gap"], ll_stderr=se)
        return out



def describe_bracket(log_z_forward: float, log_z_reverse: float, forward_band: tuple[float, float] | None = None
                     ) -> str:
    """How forward and reverse AIS estimates of one log Z relate, in words.

    Forward AIS under-estimates log Z in expectation and reverse AIS, started
    from the model's own distribution, over-estimates it, so reverse >=
    forward brackets log Z (and the log-likelihoods between them). Reverse <
    forward means the two cross: by more than forward AIS's error band
    (``forward_band``: its (lower, upper) ends, nats), at least one run did not
    anneal well (typically the reverse chains did not start from the model's
    distribution), and neither number is a bound; inside the band, the two
    agree within their error. A band unbounded below (forward AIS's weights
    too uneven to give one) settles nothing: no bracket.
    """
    gap = log_z_reverse - log_z_forward
    if gap >= 0:
        return f"bracket: log Z in [{log_z_forward:.4f}, {log_z_reverse:.4f}] (width {gap:.4f} nats)"
    if forward_band is not None and not math.isfinite(forward_band[0]):
        return (f"no bracket: reverse AIS is {-gap:.4f} nats below forward AIS, whose band reaches -inf (its "
                f"runs' weights are too uneven for an error band); anneal longer or with more runs")
    if forward_band is not None and forward_band[0] <= log_z_reverse <= forward_band[1]:
        return (f"agreement within error: reverse AIS is {-gap:.4f} nats below forward AIS, inside forward AIS's "
                f"band [{forward_band[0]:.4f}, {forward_band[1]:.4f}]; log Z is about {log_z_forward:.4f}")
    return (f"no bracket: reverse AIS is {-gap:.4f} nats below forward AIS (they cross), so neither is a bound; "
            f"anneal longer or start the reverse chains from the model's own samples")
