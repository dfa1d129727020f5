"""RAISE: conservative per-image estimates of log p(v) by reverse annealing from each image.

Burda, Grosse & Salakhutdinov (2015, "Accurate and conservative estimates of
MRF log-likelihood using reverse annealing"). Forward AIS (``AIS``) with
transitions T_1 .. T_K along p_0 (a tractable base) .. p_K (the model)
defines a generative model of its own: draw x_0 from p_0, move it through
T_1 .. T_K, emit v. Call its distribution p_fwd(v). RAISE estimates
log p_fwd(v) for a given v by importance sampling with the reverse chain as
the proposal: start at v, move down through the reversed transitions to the
base. Its weights have expectation p_fwd(v), so the log of their mean errs
low (Jensen), and p_fwd is itself worse than the model wherever the
annealing cannot reach a mode: the figure is conservative however badly the
model's chains mix (the paper's point). It rises to log p(v) as betas and
chains grow.

Here, as in AIS, one parity is annealed (the chains' state x) and the other
summed out analytically, on the same tempered path and step kernels
(``ais_steps``; the base model is AIS's: ``"data"`` or ``"uniform"``). Per
chain:

1. the starting state x_K at beta = 1: v itself for the layers of v's parity;
   the annealed hidden layers (the odd layer of an RBM annealed on its hidden
   side; h2 of a DBM annealed on v's parity, h1 of a DBM annealed on the odd
   parity) are drawn from the mean-field posterior q(h | v) (exact for an
   RBM, one step);
2. one Gibbs sweep at beta = 1, then the reversed schedule: at each beta_k
   from beta_{K-1} down to 0 the weight gains log p*_k(x) - log p*_{k+1}(x)
   and x moves by a sweep at beta_k (the AIS engine on the reversed betas,
   with 1 in front);
3. log w = log p*(v, h) - log q(h | v) + (the reverse increments) - log Z_0,
   with p*(v, h) the model with the other parity's hidden layers summed out
   (for an RBM annealed on either side this first term is exactly -F(v)).

log p_hat(v) = log mean over chains of exp(log w): unbiased for p_fwd(v) in
the exponent, a stochastic lower bound in log space.

Where it does not apply: models with input factors other than 1 (greedy
pre-training's RBMs, whose conditionals do not come from one energy) and DBNs
(directed layers: ``dbn_log_likelihood_bound``). For DBMs the mean-field
start adds importance-sampling noise, so more chains are needed than for an
RBM, and the figure is conservative relative to the mean-field-started
surrogate, not to the DBM itself.

Random numbers: the starting draws from stream 0 of the seed, the annealing of
batch b from stream 1 + b (compiled: SplitMix64 counters of that stream), so a
result is reproducible from (seed, batch_size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from natural_bm import onednn
from natural_bm.compiling import worth_compiling
from natural_bm.estimators import ais_engine
from natural_bm.estimators.ais_engine import AnnealProblem, AnnealSource, EngineOptions
from natural_bm.estimators.ais_schedule import betas_or_default
from natural_bm.estimators.ais_steps import annealed_parity, base_biases, base_visible_bias, log_z_base
from natural_bm.estimators.ais_weights import MIN_EFFECTIVE_SAMPLE_SIZE, effective_sample_size
from natural_bm.rng import RandomSource, stream_key
from natural_bm.seeding import new_seed
from natural_bm.validation import as_data_tensor, check_positive_int, warn_user

__all__ = ["RaiseEstimate", "raise_log_likelihood"]

#: random streams of one seed: the starting draws, then one annealing stream per batch
START_STREAM, FIRST_ANNEAL_STREAM = 0, 1


@dataclass
class RaiseEstimate:
    """RAISE's per-image result.

    Attributes:
        log_prob: (n,) float64 estimates of log p(v), nats (conservative: see the module docstring).
        ess: (n,) effective sample size of each image's chain weights (1 to ``n_chains``).
        log_w: (n, n_chains) float64 log weights (``log_prob`` is their log-mean-exp per row).
        log_z_base: log Z of the base model (nats).
    """

    log_prob: torch.Tensor
    ess: torch.Tensor
    log_w: torch.Tensor
    log_z_base: float

    @property
    def mean(self) -> float:
        """Mean of ``log_prob`` over images (nats per image)."""
        return float(self.log_prob.mean())

    @property
    def stderr(self) -> float:
        """Standard error of ``mean`` over images (the spread of the test set, not of the weights)."""
        n = self.log_prob.numel()
        return float(self.log_prob.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0


def _log_joint(m64, states, parity: int) -> torch.Tensor:
    """log p*(v, annealed hidden layers) with the other hidden layers summed out: (rows,) nats. ``states``:
    v in ``states[0]`` and the annealed layers filled (float64 model ``m64``)."""
    if parity == 0:  # v is annealed: the odd layers are summed out
        return -m64.free_energy_parity(states, sum_out=1)
    # v is summed out with the even layers: add back log p(v | odd layers) = v.a - s(v) - log partition(a)
    a = m64.layer_input(0, states)
    u = m64.units[0]
    log_v_given = (states[0] * a).sum(1) - u.self_energy(states[0]) - u.log_partition(a)
    return -m64.free_energy_parity(states, sum_out=0) + log_v_given


def raise_log_likelihood(model, v, n_chains: int = 10, n_betas: int = 1000, betas=None, base: str = "data",
                         data=None, seed: int | None = None, parity: int | str = "auto", batch_size: int = 100,
                         mf_steps: int = 30, progress: bool = False,
                         engine: EngineOptions | None = None) -> RaiseEstimate:
    """RAISE estimates of log p(v) for each row of ``v`` (see the module docstring), nats.

    Args:
        model: a layered model (``RBM``, ``DBM``) whose input factors are all 1.
        v: (n, n_visible) data, checked as the estimators check it (binary for a likelihood of binary units).
        n_chains: reverse chains per image.
        n_betas: betas of AIS's default schedule (``ais_schedule.default_betas``); ``betas`` (increasing
            from 0 to 1) overrides it.
        base: the base model, as ``AIS``'s: ``"data"`` (the base-rate model of ``data``: training data, not
            the test rows) or ``"uniform"``; ``"data"`` without ``data`` warns and uses ``"uniform"``.
        seed: seed of the random numbers (None: fresh).
        parity: the parity annealed, as ``AIS``'s (``"auto"``: v's for an RBM, the smaller for a DBM).
        batch_size: images annealed together (rows = batch_size x n_chains).
        mf_steps: mean-field steps of the starting posterior q(h | v) (DBMs).
        progress: a tqdm bar per batch.
        engine: ``EngineOptions`` (compiled or eager steps, packed products, the log weights' dtype).

    Returns:
        A ``RaiseEstimate``: ``log_prob`` (n,), ``ess`` (n,), ``log_w`` (n, n_chains), ``log_z_base``.
        Warns (RuntimeWarning) when some images have fewer than 10 (and half the chains) effective chains.

    The work is n x n_chains x (len(betas) + 1) block-Gibbs sweeps, like a reverse AIS with that many runs
    per image.
    """
    model.check_finite("RAISE")
    if any(f != 1.0 for f in model.input_factors.values()):
        raise ValueError(f"RAISE needs a Boltzmann machine whose input factors are all 1 (its conditionals come "
                         f"from one energy); got input_factors {model.input_factors} (a pre-training RBM?).")
    v = as_data_tensor(v, "v", model.n_input, device=model.device, dtype=model.dtype, value_range=model.data_range)
    if model.binary_visible and bool(((v != 0) & (v != 1)).any()):
        raise ValueError("RAISE of grey-level `v`: the model's visible units are binary, so the chains must start "
                         "at binary images; evaluate on binary data, e.g. load_mnist('sampled').")
    n_chains = check_positive_int(n_chains, "n_chains")
    batch_size = check_positive_int(batch_size, "batch_size")
    mf_steps = check_positive_int(mf_steps, "mf_steps")
    betas = betas_or_default(betas, n_betas)
    parity = annealed_parity(model, parity)
    if engine is None:
        engine = EngineOptions()
    elif not isinstance(engine, EngineOptions):
        raise TypeError(f"`engine` must be an EngineOptions or None, got {type(engine).__name__}.")
    seed = new_seed() if seed is None else int(seed)
    b_A = base_biases(model, base_visible_bias(model, data, base)[0])
    log_z_a = log_z_base(model, b_A)
    schedule = torch.cat([torch.ones(1, dtype=torch.float64), torch.flip(betas, [0])])  # a sweep at 1 first
    rows_max = min(batch_size, v.shape[0]) * n_chains
    jit = engine.jit_compile
    compiled = worth_compiling(len(schedule) * rows_max * model.sweep_multiply_adds()) if jit == "auto" else bool(jit)
    m64 = model.detached_copy(dtype=torch.float64)
    kernel, mats, rest, static, n_S, n_K = ais_engine.problem_layout(model, b_A, parity)
    start = RandomSource(stream_key(seed, START_STREAM) & (2**62 - 1), model.device)
    out = []
    with torch.no_grad():
        for b, lo in enumerate(range(0, v.shape[0], batch_size)):
            vb = v[lo : lo + batch_size]
            states, log_start = _start_states(m64, vb.double(), n_chains, parity, mf_steps, start)
            state = tuple(states[k].to(model.dtype) for k in model.parity_layers(parity))
            stream = FIRST_ANNEAL_STREAM + b
            source = (AnnealSource(key=stream_key(seed, stream)) if compiled else
                      AnnealSource(gen=RandomSource(stream_key(seed, stream) & (2**62 - 1), model.device)))
            with onednn.packed_products(mats, state[0].shape[0], engine.packed_weights) as products:
                half = len(products) // 2
                mms = products if kernel is ais_engine.PAIR else (products[:half], products[half:])
                problem = AnnealProblem(kernel, (*mms, *rest), static, n_S, n_K)
                _, log_w = ais_engine.anneal(problem, state, schedule, source, engine, progress=progress,
                                             desc="RAISE")
            out.append((log_start + log_w.double() - log_z_a).view(vb.shape[0], n_chains))
    log_w = torch.cat(out).cpu()
    log_prob = torch.logsumexp(log_w, 1) - math.log(n_chains)
    ess = torch.tensor([effective_sample_size(row) for row in log_w], dtype=torch.float64)
    few = int((ess < min(MIN_EFFECTIVE_SAMPLE_SIZE, n_chains / 2)).sum())
    if few:
        warn_user(f"RAISE: {few} of {len(ess)} images have fewer than {min(MIN_EFFECTIVE_SAMPLE_SIZE, n_chains / 2):g} "
                  f"effective chains of {n_chains}, so their estimates are noisy and likely too low (more "
                  "conservative than the betas allow); anneal with more betas (n_betas) or chains (n_chains).",
                  RuntimeWarning)
    return RaiseEstimate(log_prob=log_prob, ess=ess, log_w=log_w, log_z_base=log_z_a)


def _start_states(m64, v: torch.Tensor, n_chains: int, parity: int, mf_steps: int, gen: RandomSource):
    """(full states (rows = n x n_chains, image-major) with v and the annealed hidden layers drawn from
    q(h | v), log p*(v, h) - log q(h | v) per row (float64))."""
    rows = v.repeat_interleave(n_chains, 0)
    states = [None] * m64.n_layers
    states[0] = rows
    hidden = [k for k in m64.parity_layers(parity) if k != 0]
    log_q = torch.zeros(rows.shape[0], dtype=torch.float64, device=v.device)
    if hidden:
        mu, _ = m64.mean_field(v, max_steps=mf_steps)
        for k in hidden:
            mu_k = mu[k].repeat_interleave(n_chains, 0)
            states[k] = m64.units[k].sample_from_mean(mu_k, gen)
            log_q = log_q + m64.units[k].log_density_from_mean(mu_k)(states[k])
    return states, _log_joint(m64, states, parity) - log_q
