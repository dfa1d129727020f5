"""Trajectory AIS: log Z along training, annealing between successive parameter sets of the run itself.

Béreux, Decelle, Furtlehner, Rosset & Seoane (2024, arXiv 2405.15376) note
that training moves the parameters little between updates, so the run's own
trajectory theta_0, theta_1, ... is an annealing path: importance weights
carried along it give log Z at every point for a small fraction of the cost
of a full AIS each time. Two estimators: ``TrajectoryAIS`` carries the
weights on chains of its own between recorded parameter sets (below);
``TrainingChainsAIS`` carries them on the training's persistent chains, an
increment at every update (their variant; see its docstring for why it is
biased low with few chains and large steps).

In ``TrajectoryAIS`` the path between two recorded parameter sets theta_a (the last epoch's)
and theta_b (the current one) is the straight line in parameter space,
theta(s) = (1 - s) theta_a + s theta_b, 0 <= s <= 1. As in AIS
(``natural_bm.estimators.AIS``) one parity is annealed and the other summed
out analytically (``ais_steps.annealed_parity``: the visible layer of an RBM,
the smaller parity of a DBM): with x the chains' states of the annealed
layers and log p*_theta(x) = -F_theta(x) the model protocol's
``free_energy_parity``, a step from s to s' adds

    log w += log p*_{theta(s')}(x) - log p*_{theta(s)}(x)

and then moves x by one block-Gibbs sweep at theta(s') (the summed parity
given x, then x given it). After any number of steps,

    log Z_t = log Z_0 + log mean exp(log w),

anchored at a log Z_0 that is known: the run's first parameters reached from
their zero-weight copy (independent units, log Z in closed form, exact
samples), and, on request, that level replaced by an exact enumeration or a
full AIS (``reanchor``).

Step sizes (adaptive SMC, as in Jasra, Stephens, Doucet & Tsagaris 2011):
each step is the longest, at most 1 / ``n_steps`` of the move, whose
increments have a weighted variance over the chains of at most
``target_variance`` (nats^2), found by shrinking a trial step; so a move takes
``n_steps`` steps when the parameters barely moved and more (at most
``max_steps``) when they moved far.

Resampling: whenever the effective sample size of the weights falls below
``resample_below`` x ``n_chains`` after a step, the chains are resampled
(systematic resampling: with one uniform u, position i = 0 .. n - 1 takes the
first chain whose cumulative normalised weight exceeds (u + i) / n), the log
mean weight moves into log Z_0 and the weights restart equal (population
annealing). The chains then follow mass that moves between modes they
cover, and the variance stops growing with every epoch, at the price of
duplicated chains that the following sweeps spread out.

The estimate of Z is unbiased between resamplings; its log, like forward
AIS's, errs low in expectation (Jensen).

When it drifts: large moves between two recorded parameter sets (a high
learning rate with momentum, whose model swings from epoch to epoch) spread
the weights within each move, so every move resamples the chains, and each
resampling keeps the descendants of fewer of the chains drawn at the start
(``ancestors``): the genealogy collapses to one chain while the effective
sample size reads the resampling threshold. The population then covers one
region of the model, misses the mass that moves elsewhere (one sweep per step
cannot carry chains between modes), and log Z drifts low, by more with every
move (tens of nats over the 30 epochs of the demo's training: the measurements are
in ``TrajectoryAISCallback``'s docstring and experiments/trajectory_ais).
More chains or more steps slow it; a full AIS (``reanchor``) resets the level
but not the genealogy.

Random numbers: move t (t = 0 for the start) draws from a ``RandomSource``
of stream t of the seed (a re-anchoring after move t from stream 2^32 + t),
so a run is reproducible from its seed, and restored from ``state_dict`` it
continues bit-identically.
"""

from __future__ import annotations

import math

import torch

from natural_bm.estimators.ais_steps import annealed_parity, log_z_base
from natural_bm.estimators.ais_weights import MIN_EFFECTIVE_SAMPLE_SIZE, effective_sample_size
from natural_bm.rng import RandomSource, stream_key
from natural_bm.seeding import new_seed
from natural_bm.validation import check_positive_int, warn_user

__all__ = ["TrainingChainsAIS", "TrajectoryAIS", "systematic_resample"]

#: re-anchoring after move t resamples with a uniform of stream _REANCHOR_STREAMS + t
_REANCHOR_STREAMS = 2**32


def systematic_resample(log_w: torch.Tensor, u: float) -> torch.Tensor:
    """Indices (n,) int64 of a systematic resampling of the weights ``exp(log_w)`` (n,) with the uniform ``u``
    in [0, 1): index i is the first chain whose cumulative normalised weight exceeds (u + i) / n, so a chain of
    normalised weight W is taken floor(n W) or ceil(n W) times (the lowest variance of the usual schemes)."""
    n = log_w.shape[0]
    w = torch.softmax(log_w.double().cpu(), 0)
    cum = torch.cumsum(w, 0)
    cum[-1] = 1.0  # rounding must not leave the last positions past the end
    positions = (u + torch.arange(n, dtype=torch.float64)) / n
    return torch.searchsorted(cum, positions, right=True).clamp_max(n - 1)


def _weighted_variance(d: torch.Tensor, log_w: torch.Tensor) -> float:
    """The variance of ``d`` (n,) under the normalised weights ``exp(log_w)`` (n,)."""
    w = torch.softmax(log_w, 0)
    return float((w * (d - (w * d).sum()) ** 2).sum())


class TrajectoryAIS:
    """log Z of a model along its training trajectory (see the module docstring).

    Args:
        model: any model of the layered core (``RBM``, ``DBM``), the one being trained; the estimator reads
            its parameters (``parameter_dict``) when it starts and at each ``advance``.
        n_chains: chains carrying the importance weights (the estimator's own: the training's chains move
            between two calls at parameters the estimator never sees, and resampling them would change
            the training).
        n_steps: the fewest steps of a move (each with one Gibbs sweep).
        max_steps: the most steps of a move: one ``advance`` costs at most ``max_steps`` sweeps and about
            twice as many free energies of ``n_chains`` chains.
        target_variance: the most a step may add to the weighted variance of the log weights (nats^2);
            None: always ``n_steps`` equal steps.
        start_steps: the most steps from the zero-weight copy of the first parameters to them (``start``).
        parity: the parity annealed, as for ``AIS`` (``"auto"``, 0 or 1).
        resample_below: resample when the effective sample size falls below this fraction of ``n_chains``
            (0: never).
        seed: seed of the random numbers (None: fresh).

    After ``start`` or ``advance``: ``logZ`` (nats, at the last recorded parameters), ``ess`` (the lowest
    effective sample size of the weights during the move, before any resampling), ``last_steps`` and
    ``last_resamplings`` (of the move), ``log_w`` (n_chains,) the current log weights. The work is
    float64 on the model's device. A RuntimeWarning comes when ``ess`` falls below 10 (and half the
    chains), as AIS warns.
    """

    def __init__(self, model, n_chains: int = 100, n_steps: int = 10, max_steps: int = 1000,
                 target_variance: float | None = 1e-4, start_steps: int = 1000, parity: int | str = "auto",
                 resample_below: float = 0.5, seed: int | None = None) -> None:
        self.model = model
        self.n_chains = check_positive_int(n_chains, "n_chains", minimum=2)
        self.n_steps = check_positive_int(n_steps, "n_steps")
        self.max_steps = check_positive_int(max_steps, "max_steps")
        if self.max_steps < self.n_steps:
            raise ValueError(f"`max_steps` ({max_steps}) must be at least `n_steps` ({n_steps}).")
        if target_variance is not None and (isinstance(target_variance, bool) or not isinstance(
                target_variance, (int, float)) or not target_variance > 0):
            raise ValueError(f"`target_variance` must be a positive number of nats^2 or None, got {target_variance!r}.")
        self.target_variance = None if target_variance is None else float(target_variance)
        self.start_steps = check_positive_int(start_steps, "start_steps")
        self.parity = annealed_parity(model, parity)
        if isinstance(resample_below, bool) or not isinstance(resample_below, (int, float)) \
                or not 0.0 <= resample_below <= 1.0:
            raise ValueError(f"`resample_below` must lie in [0, 1] (a fraction of n_chains), got {resample_below!r}.")
        self.resample_below = float(resample_below)
        self.seed = new_seed() if seed is None else int(seed)
        self._work = model.detached_copy(dtype=torch.float64)  # the interpolated models live here
        self.chains: list | None = None
        self.log_w: torch.Tensor | None = None
        self.log_z_offset = math.nan  # log Z_0 plus the log mean weights folded in at each resampling
        self.params: dict[str, torch.Tensor] | None = None  # the last recorded parameters (float64)
        self.moves = 0
        self.resamplings = 0
        self.ancestor: torch.Tensor | None = None  # (n_chains,) int64: each chain's ancestor at the start
        self.ess = math.nan
        self.last_steps = 0
        self.last_resamplings = 0

    # ------------------------------------------------------------------ results
    @property
    def started(self) -> bool:
        return self.chains is not None

    @property
    def ancestors(self) -> int:
        """How many of the chains drawn at ``start`` have descendants left after the resamplings (from
        ``n_chains`` down to 1, when every chain descends from one; a collapsed genealogy covers one
        region of the model, whatever the effective sample size says)."""
        return 0 if self.ancestor is None else int(torch.unique(self.ancestor).numel())

    @property
    def logZ(self) -> float:
        """The current estimate of log Z at the last recorded parameters (nats)."""
        if self.log_w is None:
            raise RuntimeError("call start() before reading logZ.")
        return self.log_z_offset + float(torch.logsumexp(self.log_w, 0)) - math.log(self.n_chains)

    # ------------------------------------------------------------------ the path
    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: p.detach().to(device=self._work.device, dtype=torch.float64).clone()
                for k, p in self.model.parameter_dict().items()}

    def _set(self, a: dict, b: dict, s: float) -> None:
        """The work model's parameters at theta(s) = (1 - s) a + s b (exactly a at 0, b at 1)."""
        with torch.no_grad():
            for name, p in self._work.parameter_dict().items():
                p.copy_(a[name] if s == 0.0 else b[name] if s == 1.0 else torch.lerp(a[name], b[name], s))

    def _log_p(self, states) -> torch.Tensor:
        """log p*(x) of the annealed layers under the work model's current parameters: (n_chains,) nats."""
        return -self._work.free_energy_parity(states, sum_out=1 - self.parity)

    def _sweep(self, states, gen):
        states = self._work.sample_parity(states, 1 - self.parity, 1.0, gen)
        return self._work.sample_parity(states, self.parity, 1.0, gen)

    def _move(self, a: dict, b: dict, most: int, gen: RandomSource) -> None:
        """Anneal the chains from a to b (the module docstring's steps, sizes and resampling), in at least
        ``n_steps`` and at most ``most`` steps."""
        longest, shortest = 1.0 / self.n_steps, 1.0 / most
        s, h, steps, lowest = 0.0, longest, 0, math.inf
        self.last_resamplings = 0
        with torch.no_grad():
            self._set(a, b, 0.0)
            log_p_old = self._log_p(self.chains)
            while s < 1.0:
                while True:  # the longest step (up to h) whose increments' variance meets the target
                    s_new = 1.0 if s + h >= 1.0 - 1e-12 else s + h
                    self._set(a, b, s_new)
                    d = self._log_p(self.chains) - log_p_old
                    if self.target_variance is None or h <= shortest:
                        break
                    var = _weighted_variance(d, self.log_w)
                    if var <= self.target_variance:
                        break
                    h = max(shortest, 0.8 * h * math.sqrt(self.target_variance / var))  # var ~ h^2
                self.log_w = self.log_w + d
                steps += 1
                ess = effective_sample_size(self.log_w)
                lowest = min(lowest, ess)
                if ess < self.resample_below * self.n_chains:
                    self.resample(float(gen.uniform((1,), torch.float64)[0]))
                    self.last_resamplings += 1
                self.chains = self._sweep(self.chains, gen)
                s = s_new
                if s < 1.0:
                    log_p_old = self._log_p(self.chains)
                    h = min(longest, 1.5 * h)
        self.last_steps, self.ess = steps, lowest
        if lowest < min(MIN_EFFECTIVE_SAMPLE_SIZE, self.n_chains / 2):
            warn_user(
                f"trajectory AIS: {lowest:.1f} effective chains of {self.n_chains} carried the estimate in a move of "
                f"{steps} steps, so log Z is likely too low: the parameters moved too far (raise max_steps or "
                "lower target_variance) or the chains do not mix; re-anchor with a full AIS.", RuntimeWarning)

    def _source(self, stream: int) -> RandomSource:
        return RandomSource(stream_key(self.seed, stream) & (2**62 - 1), self._work.device)

    # ------------------------------------------------------------------ steps
    def start(self, params: dict | None = None) -> float:
        """Start at the model's current parameters (or at ``params``, {name: tensor} as ``parameter_dict``
        gives them, e.g. recorded before training); returns log Z there (nats).

        The chains are exact draws of the annealed layers of the zero-weight copy of the model (its
        biases, no weights: independent units, whose log Z is a sum of the layers' log partitions); a move
        (of at most ``start_steps`` steps) brings the weights in. Accurate when the weights are small (a
        fresh initialisation); for a model that starts trained (warm start, pre-trained DBM) follow with
        ``reanchor(AIS(...).run_logZ())``.
        """
        m = self._work
        self.params = self._snapshot() if params is None else {
            k: torch.as_tensor(v).to(device=m.device, dtype=torch.float64).clone() for k, v in params.items()}
        base = {name: (torch.zeros_like(p) if name in m.weight_names else p) for name, p in self.params.items()}
        self._set(base, base, 0.0)
        gen = self._source(0)
        states = [None] * m.n_layers
        with torch.no_grad():
            for k in m.parity_layers(self.parity):
                states[k] = m.units[k].sample(m.bias(k).expand(self.n_chains, -1).contiguous(), 1.0, gen)
            self.log_z_offset = log_z_base(m, [m.bias(k) for k in range(m.n_layers)])
        self.chains = states
        self.log_w = torch.zeros(self.n_chains, dtype=torch.float64, device=m.device)
        self.ancestor = torch.arange(self.n_chains)
        self.moves, self.resamplings = 1, 0
        self._move(base, self.params, self.start_steps, gen)
        return self.logZ

    def advance(self) -> float:
        """Anneal from the last recorded parameters to the model's current ones; returns log Z (nats)."""
        if not self.started:
            raise RuntimeError("call start() before advance().")
        self.model.check_finite("trajectory AIS")
        new = self._snapshot()
        gen = self._source(self.moves)
        self.moves += 1
        self._move(self.params, new, self.n_steps if self.target_variance is None else self.max_steps, gen)
        self.params = new
        return self.logZ

    def resample(self, u: float) -> None:
        """Systematic resampling with the uniform ``u`` (``systematic_resample``): log Z is unchanged, the
        weights restart equal."""
        idx = systematic_resample(self.log_w, u)
        self.ancestor = self.ancestor[idx]
        idx = idx.to(self.log_w.device)
        self.log_z_offset = self.logZ
        self.chains = [None if c is None else c[idx] for c in self.chains]
        self.log_w = torch.zeros_like(self.log_w)
        self.resamplings += 1

    def reanchor(self, log_z: float) -> None:
        """Take ``log_z`` (nats; exact, or a full AIS at the current recorded parameters) as the level from
        now on: the chains are resampled by their weights and the weights restart equal, so
        the drift accumulated so far is dropped; later estimates are ``log_z`` plus what the path adds."""
        if not self.started:
            raise RuntimeError("call start() before reanchor().")
        log_z = float(log_z)
        if not math.isfinite(log_z):
            raise ValueError(f"`log_z` must be a finite number of nats, got {log_z!r}.")
        self.resample(float(self._source(_REANCHOR_STREAMS + self.moves).uniform((1,), torch.float64)[0]))
        self.log_z_offset = log_z

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Chains, weights, level, recorded parameters and counters (CPU tensors), to continue bit-identically."""
        if not self.started:
            return {}
        return {"seed": self.seed, "parity": self.parity, "n_chains": self.n_chains,
                "chains": [None if c is None else c.detach().cpu().clone() for c in self.chains],
                "log_w": self.log_w.cpu().clone(), "log_z_offset": self.log_z_offset,
                "params": {k: v.cpu().clone() for k, v in self.params.items()},
                "moves": self.moves, "resamplings": self.resamplings, "ess": self.ess,
                "ancestor": self.ancestor.clone(),
                "last_steps": self.last_steps, "last_resamplings": self.last_resamplings}

    def load_state_dict(self, state: dict) -> None:
        """Take back ``state_dict``'s output (an empty dict: not started)."""
        if not state:
            self.chains = self.log_w = self.params = None
            return
        if int(state["n_chains"]) != self.n_chains or int(state["parity"]) != self.parity:
            raise ValueError(f"the saved trajectory AIS has {state['n_chains']} chains on parity {state['parity']}; "
                             f"this one {self.n_chains} on parity {self.parity}: build it with the saved settings.")
        dev = self._work.device
        self.seed = int(state["seed"])
        self.chains = [None if c is None else c.to(dev) for c in state["chains"]]
        self.log_w = state["log_w"].to(dev)
        self.log_z_offset = float(state["log_z_offset"])
        self.params = {k: v.to(dev) for k, v in state["params"].items()}
        self.moves, self.resamplings = int(state["moves"]), int(state["resamplings"])
        # (states saved before the genealogy was kept: counted from the resume)
        self.ancestor = state["ancestor"].clone() if "ancestor" in state else torch.arange(self.n_chains)
        self.ess = float(state["ess"])
        self.last_steps, self.last_resamplings = int(state["last_steps"]), int(state["last_resamplings"])


def _as_states(model, chains) -> list:
    """The training's chains as one state per layer: an RBM's PCD chains are its visible rows (n, n_visible)."""
    if isinstance(chains, torch.Tensor):
        return [chains] + [None] * (model.n_layers - 1)
    return list(chains)


class TrainingChainsAIS:
    """log Z along training from importance weights carried by the training's own persistent chains.

    The variant of Béreux et al. (2024): the persistent chains of PCD (or of mean-field PCD, parallel
    tempering's beta = 1 chains) are the particles and every parameter update theta_t -> theta_{t+1} of the
    run is a step of the annealing path: with x the chains after the update's Gibbs steps (at theta_t),

        log w += log p*_{theta_{t+1}}(x) - log p*_{theta_t}(x),

    and the training's next Gibbs steps (at theta_{t+1}) are the step's transition, so that
    log Z_t = ``log_z_offset`` + log mean exp(log w). Nothing of the training is touched: the chains
    are read, never resampled; the increments are float64 on copies of the parameters.

    Args:
        model: the model being trained (``RBM``, ``DBM``).
        parity: the parity whose layers the chains' states give and whose free energy is taken (the other
            one summed out), as for ``AIS``; an RBM's PCD chains hold the visible layer (parity 0) only.

    Why it errs low (measured, ``TrajectoryAISCallback``'s docstring): the parameter steps of SGD are noisy,
    so the path from update to update is long and the weights spread with every step however the chains
    are chosen; and the step depends on the chains that weigh it: the negative phase lowers log p* where
    the chains are, so their increments fall short of the change of log Z by about
    lr tr Cov(grad log p*) / n_chains per update. Both shrink with small steps, and the second with many
    chains (a 12-8 RBM at lr 0.05, momentum 0.5: within 0.03 nats of exact over 400 updates with 5,000
    chains; the demo's RBM, 100 chains at lr 0.002, momentum 0.9: thousands of nats low over its 30 epochs,
    experiments/trajectory_ais/drift.json).

    ``start(log_z)`` sets the level at the model's parameters now; ``advance(chains)`` adds the increment
    from the parameters last seen to the model's current ones (call it after every update, and before
    an update whose parameters something else changed since: ``moved``); ``reanchor(log_z)`` takes a new
    level and restarts the weights equal. ``logZ``, ``ess`` (Kish's effective sample size of the
    current weights), ``updates`` (increments added since the last level) describe the estimate.
    """

    def __init__(self, model, parity: int | str = "auto") -> None:
        self.model = model
        self.parity = annealed_parity(model, parity)
        self._seen = model.detached_copy(dtype=torch.float64)  # the parameters of the last increment
        self._now = model.detached_copy(dtype=torch.float64)  # the current ones (work space)
        self._seen_native = {k: p.detach().clone() for k, p in model.parameter_dict().items()}
        self.log_w: torch.Tensor | None = None
        self.log_z_offset = math.nan
        self.updates = 0

    @property
    def started(self) -> bool:
        return math.isfinite(self.log_z_offset)

    @property
    def logZ(self) -> float:
        """The current estimate of log Z at the last parameters seen (nats)."""
        if not self.started:
            raise RuntimeError("call start() before reading logZ.")
        if self.log_w is None:
            return self.log_z_offset
        return self.log_z_offset + float(torch.logsumexp(self.log_w, 0)) - math.log(self.log_w.shape[0])

    @property
    def n_chains(self) -> int:
        """The number of chains weighed (0 before the first increment)."""
        return 0 if self.log_w is None else int(self.log_w.shape[0])

    @property
    def ess(self) -> float:
        """Kish's effective sample size of the current weights (NaN before the first increment)."""
        return math.nan if self.log_w is None else effective_sample_size(self.log_w)

    def _record(self) -> None:
        with torch.no_grad():
            for name, p in self.model.parameter_dict().items():
                self._seen_native[name].copy_(p)
                getattr(self._seen, name).copy_(p)

    def start(self, log_z: float) -> None:
        """Take ``log_z`` (nats) as log Z at the model's current parameters; the weights start equal."""
        log_z = float(log_z)
        if not math.isfinite(log_z):
            raise ValueError(f"`log_z` must be a finite number of nats, got {log_z!r}.")
        self._record()
        self.log_z_offset, self.log_w, self.updates = log_z, None, 0

    def moved(self) -> bool:
        """Whether the model's parameters differ from those of the last increment (a change between updates)."""
        return any(not torch.equal(p, self._seen_native[name]) for name, p in self.model.parameter_dict().items())

    def _log_p(self, model, states) -> torch.Tensor:
        return -model.free_energy_parity(states, sum_out=1 - self.parity)

    def advance(self, chains) -> None:
        """Add the increment log p*_now(x) - log p*_seen(x) at the chains ``x`` (the training's, as
        ``Trainer.model_chains`` gives them: visible rows, or one state per layer), then take the current
        parameters as seen."""
        if not self.started:
            raise RuntimeError("call start() before advance().")
        states = [None if c is None else c.detach().to(dtype=torch.float64) for c in _as_states(self.model, chains)]
        if any(states[k] is None for k in self.model.parity_layers(self.parity)):
            raise ValueError(f"the training's chains hold no state of the layers of parity {self.parity}; "
                             "an RBM's persistent chains hold its visible layer: use parity 0.")
        with torch.no_grad():
            for name, p in self._now.parameter_dict().items():
                p.copy_(getattr(self.model, name))
            d = self._log_p(self._now, states) - self._log_p(self._seen, states)
        self.log_w = d if self.log_w is None else self.log_w + d
        self._seen, self._now = self._now, self._seen
        with torch.no_grad():
            for name, p in self.model.parameter_dict().items():
                self._seen_native[name].copy_(p)
        self.updates += 1

    def reanchor(self, log_z: float) -> None:
        """Take ``log_z`` (nats; exact, or a full AIS at the current parameters) as the level from now on;
        the weights restart equal, so the drift and the weights' spread so far are dropped."""
        if not self.started:
            raise RuntimeError("call start() before reanchor().")
        self.start(log_z)

    def state_dict(self) -> dict:
        """Level, weights, parameters last seen and counter (CPU tensors), to continue bit-identically."""
        if not self.started:
            return {}
        return {"parity": self.parity, "log_z_offset": self.log_z_offset, "updates": self.updates,
                "log_w": None if self.log_w is None else self.log_w.cpu().clone(),
                "params": {k: v.detach().cpu().clone() for k, v in self._seen_native.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Take back ``state_dict``'s output (an empty dict: not started)."""
        if not state:
            self.log_z_offset, self.log_w = math.nan, None
            return
        if int(state["parity"]) != self.parity:
            raise ValueError(f"the saved training-chain trajectory anneals parity {state['parity']}; this one "
                             f"{self.parity}: build it with the saved parity.")
        dev = self._seen.device
        with torch.no_grad():
            for name, v in state["params"].items():
                self._seen_native[name].copy_(v)
                getattr(self._seen, name).copy_(v)
        self.log_z_offset, self.updates = float(state["log_z_offset"]), int(state["updates"])
        self.log_w = None if state["log_w"] is None else state["log_w"].to(dev)
