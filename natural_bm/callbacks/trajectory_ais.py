"""``TrajectoryAISCallback``: log Z and log-likelihoods at every epoch, from trajectory AIS."""

from __future__ import annotations

import math

import torch

from natural_bm.callbacks.callback import Callback
from natural_bm.estimators import AIS, log_likelihood, log_partition_exact
from natural_bm.estimators.ais_weights import MIN_EFFECTIVE_SAMPLE_SIZE
from natural_bm.estimators.trajectory import TrainingChainsAIS, TrajectoryAIS
from natural_bm.validation import check_positive_int, warn_user

ANCHORS = ("auto", "base", "exact", "ais")
CHAINS = ("own", "training")


class TrajectoryAISCallback(Callback):
    """Follows log Z along training with trajectory AIS (``natural_bm.estimators.trajectory``) and logs
    the log-likelihoods it implies, every epoch, re-anchored by a full AIS every ``reanchor_every`` epochs.

    Two kinds of particles carry the importance weights (``chains``):

    * ``"own"`` (the default): the callback's ``n_chains`` chains. At the end of every epoch they anneal
      from the last epoch's parameters to the new ones along the straight line between them (adaptive
      steps of one Gibbs sweep, resampled when the weights spread: ``TrajectoryAIS``).
    * ``"training"``: the training's own persistent chains (Béreux et al. 2024; ``TrainingChainsAIS``):
      after every parameter update the weights gain log p*_new(x) - log p*_old(x) at the chains x, in
      float64 on copies of the parameters; the training is untouched (bit-identical weights with and
      without the callback) and the chains are never resampled. Two free energies of the chains per
      batch. From the end of the first epoch (the chains start at data rows and get an epoch to reach
      the model); the first epoch's value is the anchor's. For PCD with few chains and large steps it
      is strongly biased low (see "When it drifts"): use it with many chains and small learning rates.

    The epoch logs get (prefixed by ``name``):

    * ``logZ_trajectory``: the estimate of log Z (nats), every epoch (at a re-anchoring epoch, the full
      AIS's);
    * ``ess_trajectory``: the effective sample size of the weights (1 to the number of chains; own
      chains: the lowest during the epoch's move; training chains: at the epoch's end), every epoch;
    * ``steps_trajectory`` and ``resamplings_trajectory``: the own chains' steps of the epoch's move
      (``n_steps`` to ``max_steps``) and resamplings; for the training chains, the updates of the epoch
      and 0;
    * ``ancestors_trajectory``: of the own chains, how many of the chains drawn at the start have
      descendants left (``n_chains`` when no resampling has happened; 1: every chain descends from one;
      re-anchoring does not renew them); NaN for the training chains;
    * ``train_ll_trajectory``: the mean of log p*(v) - log Z over the fit's training monitoring rows
      (``params["train_data"]``; the exact -F(v) of an RBM, the mean-field bound of a DBM, as
      ``natural_bm.estimators.log_likelihood``), and with ``validation`` ``val_ll_trajectory`` over the
      validation data, at every ``every``-th epoch and the last (NaN elsewhere and without the data);
    * with ``reanchor_every`` > 0, ``logZ_drift``: at a re-anchoring epoch, the trajectory's estimate
      minus the full AIS's (NaN elsewhere).

    The start (``anchor``): the parameters before the first epoch are reached from their zero-weight
    copy (independent units, log Z in closed form) through ``start_steps`` interpolations, accurate for
    a fresh initialisation (small weights); ``"exact"`` then takes the level there from
    ``log_partition_exact``, ``"ais"`` from a full AIS at the end of the first epoch (for a model that
    starts trained: a warm start, a pre-trained DBM); ``"auto"`` is ``"exact"`` where at most
    ``max_exact_states`` states are enumerated, else ``"base"``. The training chains take their level at
    the end of the first epoch: the own chains' start and first move (``"base"``), the exact log Z there
    (``"exact"``) or a full AIS there (``"ais"``).

    Re-anchoring (``reanchor_every`` = N > 0) runs a full AIS (``natural_bm.estimators.AIS`` with
    ``ais_runs`` runs of ``ais_betas`` betas, the training monitoring rows as its base-rate data) every N
    epochs, logs the difference (``logZ_drift``) and continues from the AIS level with equal weights (the
    own chains resampled by their weights first: the level is renewed, their genealogy is not). The
    default, every epoch with 5,000 betas, is what kept the demo within about a nat (below); it costs one
    such AIS per epoch, and ``logZ_drift`` then says what one epoch of trajectory would have added.

    When it drifts. Measured on the demo's training (RBM 784-200, PCD-1 with 100 chains, lr 0.002,
    momentum 0.9, 30 epochs of MNIST binarised per minibatch, against a 100-run 14,501-beta AIS at every
    epoch) and on a 784-20 RBM trained the same way (exact log Z), by ``experiments/trajectory_ais``
    (``run_all.sh``; the table of the documentation's trajectory results page is read from its
    ``drift.json``):

    * The moves are large. log Z swings by several nats from one epoch to the next, up to tens, and one
      move is hard even for well-spread particles: copies of the training's chains annealed over one
      move keep a handful of effective chains of 100, and forward and reverse estimates of one move
      differ by nats to tens of nats.
    * Own chains without re-anchoring: each move resamples them several times, so their genealogy
      collapses to one ancestor within about ten epochs while the effective sample size reads about half
      the chains every epoch (the resampling threshold). They cover one region, miss the mass the model
      moves elsewhere, and log Z drifts low, by tens of nats over the 30 epochs. More chains or smaller
      steps slow the drift but do not stop it; a fresh population every few epochs is close at its
      restarts and off again in between.
    * Training chains, an increment at every update: thousands of nats low after 30 epochs, one
      effective chain from the first epoch. Two causes, both measured: the weights spread with the noise
      of every SGD step, and each step depends on the chains that weigh it (the negative phase lowers
      log p* where they are), which biases the increments low by about lr tr Cov(grad log p*) / n_chains
      per update (``bias.py``: shrinks tenfold with ten times the chains). The training chains serve
      only with many chains and small steps (the 0.1-nat test: 5,000 chains, lr 0.05).
    * Re-anchoring: a 5,000-beta AIS at every epoch lands within about half a nat of the reference at
      nearly every epoch; every 2 or 3 epochs leaves the epochs between anchors up to tens of nats off.

    It is accurate while the moves are small: the first epochs of a fresh model, small or decaying
    learning rates (the 784-50 test: 3 epochs at lr 0.05, momentum 0.5, within a 100-run AIS's band),
    the 12-8 models of the tests. Watch ``ancestors_trajectory`` (a warning comes once when a tenth or
    fewer of the chains have descendants) and ``logZ_drift``.

    Cost: ``scripts/bench_trajectory.py`` times the own chains' move, the re-anchoring AIS and the
    training chains' increments beside the training epoch (the demo's model: ``cost_per_epoch`` of
    ``experiments/trajectory_ais/drift.json``, on the trajectory results page). The own chains' move and
    a 5,000-beta re-anchoring each cost about two training epochs there; the training chains' increments
    (two float64 free energies of the chains per batch) about half of one.

    The state (chains, weights, level, last parameters) goes through ``state_dict``, so a checkpointed run
    resumes bit-identically.

    Args:
        every: epochs between log-likelihood evaluations (a free energy of every monitoring row); log Z and
            the effective sample size are logged every epoch, since the chains advance every epoch.
        chains: ``"own"`` or ``"training"`` (above).
        n_chains, n_steps, max_steps, target_variance, start_steps, parity, resample_below: of
            ``TrajectoryAIS`` (the own chains; ``parity`` for both).
        reanchor_every: epochs between full AIS re-anchorings (0: never).
        validation: also log ``val_ll_trajectory``.
        anchor: the start (see above): ``"auto"``, ``"base"``, ``"exact"`` or ``"ais"``.
        ais_runs, ais_betas: the full AIS's runs and betas (None: its 14,501-beta default).
        seed: seed of the chains (and of AIS at epoch e: ``seed + e``).
        name: prefix of the log keys.
        max_exact_states: the largest enumeration ``anchor="auto"`` does.
    """

    produces_logs = True
    batch_logs_on_device = True  # (the batch hooks read no logs: no host round-trip per batch)

    def __init__(self, every: int = 1, chains: str = "own", n_chains: int = 100, n_steps: int = 10,
                 max_steps: int = 1000, target_variance: float | None = 1e-4, reanchor_every: int = 1,
                 validation: bool = True, anchor: str = "auto", start_steps: int = 1000, ais_runs: int = 100,
                 ais_betas: int | None = 5000, parity: int | str = "auto", resample_below: float = 0.5,
                 seed: int = 0, name: str = "", max_exact_states: int = 2**20) -> None:
        super().__init__()
        self.every = check_positive_int(every, "every")
        if chains not in CHAINS:
            raise ValueError(f"`chains` must be one of {CHAINS} (the callback's own chains or the training's "
                             f"persistent ones), got {chains!r}.")
        self.chains = chains
        self.n_chains = check_positive_int(n_chains, "n_chains", minimum=2)
        self.n_steps = check_positive_int(n_steps, "n_steps")
        self.max_steps = check_positive_int(max_steps, "max_steps")
        self.target_variance = target_variance
        self.reanchor_every = check_positive_int(reanchor_every, "reanchor_every", minimum=0)
        self.start_steps = check_positive_int(start_steps, "start_steps")
        if anchor not in ANCHORS:
            raise ValueError(f"`anchor` must be one of {ANCHORS}, got {anchor!r}.")
        self.anchor = anchor
        self.validation = bool(validation)
        self.ais_runs = check_positive_int(ais_runs, "ais_runs")
        self.ais_betas = None if ais_betas is None else check_positive_int(ais_betas, "ais_betas", minimum=2)
        self.parity = parity
        self.resample_below = resample_below
        self.seed = int(seed)
        self.name = name
        self.max_exact_states = int(max_exact_states)
        self.estimator: TrajectoryAIS | None = None  # the own chains (and the training chains' start)
        self.training: TrainingChainsAIS | None = None  # the training chains' weights (chains="training")
        self._initial: dict | None = None  # the parameters before the first epoch (until the start)
        self._epoch_updates = 0
        self._warned_collapse = False
        self.results: dict[int, dict[str, float]] = {}

    def keys(self) -> list[str]:
        keys = ["logZ_trajectory", "ess_trajectory", "steps_trajectory", "resamplings_trajectory",
                "ancestors_trajectory", "train_ll_trajectory"]
        keys += ["val_ll_trajectory"] if self.validation else []
        keys += ["logZ_drift"] if self.reanchor_every else []
        return [self.name + k for k in keys]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        training = self.training is not None and self.training.started
        if self.estimator is None or not (self.estimator.started or training):
            return {}
        state = {"estimator": self.estimator.state_dict(),
                 "results": {str(e): dict(r) for e, r in self.results.items()}}
        if self.training is not None:
            state["training"] = self.training.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        if self.estimator is None:  # restored before any on_train_begin (a finished run's resume)
            self._build_estimators()
        self.estimator.load_state_dict(state["estimator"])
        if self.training is not None:
            self.training.load_state_dict(state.get("training", {}))
        self.results = {int(e): dict(r) for e, r in state["results"].items()}
        self._initial = None

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self._build_estimators()
        # recorded now, annealed to at the first epoch end (a resumed run's restored state replaces it)
        self._initial = {k: p.detach().double().clone() for k, p in self.model.parameter_dict().items()}
        self.results, self._warned_collapse = {}, False

    def _build_estimators(self) -> None:
        """The own chains' estimator (and the training chains' weights), fresh, on ``self.model``."""
        self.estimator = TrajectoryAIS(self.model, n_chains=self.n_chains, n_steps=self.n_steps,
                                       max_steps=self.max_steps, target_variance=self.target_variance,
                                       start_steps=self.start_steps, parity=self.parity,
                                       resample_below=self.resample_below, seed=self.seed)
        if self.chains == "training":
            if self.model.trainer is None or self.model.trainer.model_chains() is None:
                raise ValueError("TrajectoryAISCallback(chains='training') needs an algorithm with persistent "
                                 "chains ('pcd', 'mfpcd', 'pt'); use chains='own'.")
            self.training = TrainingChainsAIS(self.model, parity=self.parity)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_updates = 0
        if self.training is not None and self.training.started and self.training.moved():
            # parameters changed outside the updates (by another callback): weigh that change too
            self.training.advance(self.model.trainer.model_chains())

    def on_train_batch_end(self, batch, logs=None):
        if self.training is not None and self.training.started:
            self.training.advance(self.model.trainer.model_chains())
            self._epoch_updates += 1

    def _anchor(self) -> str:
        if self.anchor != "auto":
            return self.anchor
        try:
            feasible = self.model.n_exact_states() <= self.max_exact_states
        except ValueError:  # no binary parity to enumerate
            feasible = False
        return "exact" if feasible else "base"

    def _exact_at(self, params: dict) -> float:
        m = self.model.detached_copy(dtype=torch.float64)
        with torch.no_grad():
            for k, p in m.parameter_dict().items():
                p.copy_(params[k])
        return log_partition_exact(m, progress=False)

    def _start(self) -> str:
        """Start the own chains at the recorded initial parameters; returns the anchor used."""
        anchor = self._anchor()
        self.estimator.start(self._initial)
        if anchor == "exact" and self.training is None:
            self.estimator.reanchor(self._exact_at(self._initial))
        self._initial = None
        return anchor

    def _full_ais(self, epoch: int) -> float:
        train = self.params.get("train_data")
        ais = AIS(self.model, data=train, n_runs=self.ais_runs, n_betas=self.ais_betas,
                  base="data" if train is not None else "uniform", seed=self.seed + epoch,
                  progress=self.params.get("verbose", 0) == 1, parity=self.parity)
        return ais.run_logZ()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for k in self.keys():
            logs.setdefault(k, math.nan)
        out = self.evaluate(epoch)
        logs.update({self.name + k: v for k, v in out.items()})

    def _advance_own(self) -> tuple[dict[str, float], str | None]:
        est = self.estimator
        anchor = self._start() if not est.started else None
        z = est.advance()
        return {"logZ_trajectory": z, "ess_trajectory": est.ess, "steps_trajectory": float(est.last_steps),
                "resamplings_trajectory": float(est.last_resamplings),
                "ancestors_trajectory": float(est.ancestors)}, anchor

    def _warn_if_collapsed(self) -> None:
        """Warn (once a fit) when a tenth or fewer of the own chains' starting chains have descendants left."""
        est = self.estimator
        if not self._warned_collapse and est.ancestors <= max(1, est.n_chains // 10):
            self._warned_collapse = True
            warn_user(f"trajectory AIS: the own chains descend from {est.ancestors} of their {est.n_chains} starting "
                      "chains (resampling collapsed their genealogy), so they cover one region of the model and log "
                      "Z drifts low, whatever the effective sample size says; re-anchor with a full AIS more often "
                      "(reanchor_every=1, every epoch, is the callback's default; in a natural-bm train config: "
                      "ais.trajectory_reanchor_every).", RuntimeWarning)

    def _reanchor_due(self, epoch: int) -> bool:
        return bool(self.reanchor_every) and (epoch + 1) % self.reanchor_every == 0

    def _advance_training(self, epoch: int) -> tuple[dict[str, float], bool]:
        """The training chains' values; and whether the level was just taken from a full AIS."""
        tc = self.training
        if tc.started:
            ess = tc.ess
            if ess < min(MIN_EFFECTIVE_SAMPLE_SIZE, tc.n_chains / 2):
                warn_user(f"trajectory AIS: {ess:.1f} effective training chains of {tc.n_chains} carry the "
                          "estimate, so log Z is likely too low (the increments along the updates spread the "
                          "weights, and the steps depend on the chains that weigh them); re-anchor with a full "
                          "AIS more often (reanchor_every) or use chains='own'.", RuntimeWarning)
            return {"logZ_trajectory": tc.logZ, "ess_trajectory": ess,
                    "steps_trajectory": float(self._epoch_updates), "resamplings_trajectory": 0.0,
                    "ancestors_trajectory": math.nan}, False
        # the end of the first epoch: the level there (the anchor's), from which the training chains carry it
        anchor, from_ais = self._anchor(), False
        if anchor == "ais" or self._reanchor_due(epoch):
            z, from_ais = self._full_ais(epoch), True
        elif anchor == "exact":
            z = self._exact_at({k: p.detach().double() for k, p in self.model.parameter_dict().items()})
        else:
            z = self._advance_own()[0]["logZ_trajectory"]
        self._initial = None
        tc.start(z)
        return {"logZ_trajectory": z, "ess_trajectory": math.nan, "steps_trajectory": 0.0,
                "resamplings_trajectory": 0.0, "ancestors_trajectory": math.nan}, from_ais

    def evaluate(self, epoch: int) -> dict[str, float]:
        """Advance the trajectory to the model's parameters now; returns the un-prefixed values."""
        if self.training is not None:
            out, anchored = self._advance_training(epoch)
            reanchor = not anchored and self._reanchor_due(epoch)
        else:
            out, anchor = self._advance_own()
            reanchor = anchor == "ais" or self._reanchor_due(epoch)
            if not reanchor:
                self._warn_if_collapsed()
        if reanchor:
            log_z = self._full_ais(epoch)
            if self.reanchor_every:
                out["logZ_drift"] = out["logZ_trajectory"] - log_z
            (self.training if self.training is not None else self.estimator).reanchor(log_z)
            out["logZ_trajectory"] = log_z
        last = epoch == self.params.get("epochs", epoch + 1) - 1
        if (epoch + 1) % self.every == 0 or last:
            train = self.params.get("train_data")
            valid = self.params.get("validation_data")
            if train is not None:
                out["train_ll_trajectory"] = log_likelihood(self.model, train, out["logZ_trajectory"])[0]
            if self.validation and valid is not None:
                out["val_ll_trajectory"] = log_likelihood(self.model, valid, out["logZ_trajectory"])[0]
        self.results[epoch] = out
        return out
