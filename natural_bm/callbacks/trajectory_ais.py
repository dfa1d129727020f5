"""``TrajectoryAISCallback``: log Z and log-likelihoods at every epoch, from trajectory AIS."""

from __future__ import annotations

import math

import torch

from natural_bm.callbacks.callback import Callback
from natural_bm.estimators import AIS, log_likelihood, log_partition_exact
from natural_bm.estimators.trajectory import TrajectoryAIS
from natural_bm.validation import check_positive_int

ANCHORS = ("auto", "base", "exact", "ais")


class TrajectoryAISCallback(Callback):
    """Follows log Z along training with trajectory AIS (``natural_bm.estimators.trajectory``) and logs
    the log-likelihoods it implies, every epoch, for a small fraction of a full AIS's cost.

    At the end of every epoch the callback's chains anneal from the last epoch's parameters to the new ones
    through ``n_steps`` interpolated parameter sets (one Gibbs sweep each), carrying importance weights from
    a known start; the epoch logs get (prefixed by ``name``):

    * ``logZ_trajectory``: the estimate of log Z (nats), every epoch;
    * ``ess_trajectory``: the lowest effective sample size of the weights during the epoch's move (1 to
      ``n_chains``; a RuntimeWarning below 10), every epoch;
    * ``steps_trajectory`` and ``resamplings_trajectory``: the steps of the epoch's move (``n_steps`` to
      ``max_steps``, more for larger moves: the cost) and how often its chains were resampled; both
      high mean a move too large to follow (see below), every epoch;
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
    ``max_exact_states`` states are enumerated, else ``"base"``.

    When it drifts: when the parameters move far in one epoch (early epochs, a high or raised learning
    rate), the log weights spread and the effective sample size drops: raise ``n_steps``. When the chains
    do not mix (a sharp model whose modes separate as it trains), the weighted chains miss modes and log Z
    comes out too low, while the effective sample size may look fine: the weights cannot show it. Both
    errors accumulate over epochs. Re-anchoring (``reanchor_every`` = N > 0) runs a full AIS
    (``natural_bm.estimators.AIS`` with ``ais_runs`` runs of ``ais_betas`` betas, the training monitoring
    rows as its base-rate data) every N epochs, logs the difference (``logZ_drift``) and continues from the
    AIS level: the drift is then bounded by what N epochs add, at the cost of one AIS per N epochs.

    The state (chains, weights, level, last parameters) goes through ``state_dict``, so a checkpointed run
    resumes bit-identically.

    Args:
        every: epochs between log-likelihood evaluations (a free energy of every monitoring row); log Z and
            the effective sample size are logged every epoch, since the chains advance every epoch.
        n_chains, n_steps, max_steps, target_variance, start_steps, parity, resample_below: of
            ``TrajectoryAIS``.
        reanchor_every: epochs between full AIS re-anchorings (0: never).
        validation: also log ``val_ll_trajectory``.
        anchor: the start (see above): ``"auto"``, ``"base"``, ``"exact"`` or ``"ais"``.
        ais_runs, ais_betas: the full AIS's runs and betas (None: its 14,501-beta default).
        seed: seed of the chains (and of AIS at epoch e: ``seed + e``).
        name: prefix of the log keys.
        max_exact_states: the largest enumeration ``anchor="auto"`` does.
    """

    produces_logs = True

    def __init__(self, every: int = 1, n_chains: int = 100, n_steps: int = 10, max_steps: int = 1000,
                 target_variance: float | None = 1e-4, reanchor_every: int = 0, validation: bool = True,
                 anchor: str = "auto", start_steps: int = 1000, ais_runs: int = 100,
                 ais_betas: int | None = None, parity: int | str = "auto", resample_below: float = 0.5,
                 seed: int = 0, name: str = "", max_exact_states: int = 2**20) -> None:
        super().__init__()
        self.every = check_positive_int(every, "every")
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
        self.estimator: TrajectoryAIS | None = None
        self._initial: dict | None = None  # the parameters before the first epoch (until the start)
        self.results: dict[int, dict[str, float]] = {}

    def keys(self) -> list[str]:
        keys = ["logZ_trajectory", "ess_trajectory", "steps_trajectory", "resamplings_trajectory",
                "train_ll_trajectory"]
        keys += ["val_ll_trajectory"] if self.validation else []
        keys += ["logZ_drift"] if self.reanchor_every else []
        return [self.name + k for k in keys]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        if self.estimator is None or not self.estimator.started:
            return {}
        return {"estimator": self.estimator.state_dict(),
                "results": {str(e): dict(r) for e, r in self.results.items()}}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        if self.estimator is None:  # restored without a fit (a run whose training had ended): build it first
            self.on_train_begin()
        self.estimator.load_state_dict(state["estimator"])
        self.results = {int(e): dict(r) for e, r in state["results"].items()}
        self._initial = None

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self.estimator = TrajectoryAIS(self.model, n_chains=self.n_chains, n_steps=self.n_steps,
                                       max_steps=self.max_steps, target_variance=self.target_variance,
                                       start_steps=self.start_steps, parity=self.parity,
                                       resample_below=self.resample_below, seed=self.seed)
        # recorded now, annealed to at the first epoch end (a resumed run's restored state replaces it)
        self._initial = {k: p.detach().double().clone() for k, p in self.model.parameter_dict().items()}
        self.results = {}

    def _anchor(self) -> str:
        if self.anchor != "auto":
            return self.anchor
        try:
            feasible = self.model.n_exact_states() <= self.max_exact_states
        except ValueError:  # no binary parity to enumerate
            feasible = False
        return "exact" if feasible else "base"

    def _start(self) -> str:
        """Start the trajectory at the recorded initial parameters; returns the anchor used."""
        anchor = self._anchor()
        self.estimator.start(self._initial)
        if anchor == "exact":
            start_model = self.model.detached_copy(dtype=torch.float64)
            with torch.no_grad():
                for k, p in start_model.parameter_dict().items():
                    p.copy_(self._initial[k])
            self.estimator.reanchor(log_partition_exact(start_model, progress=False))
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

    def evaluate(self, epoch: int) -> dict[str, float]:
        """Advance the trajectory to the model's parameters now; returns the un-prefixed values."""
        est = self.estimator
        anchor = self._start() if not est.started else None
        out = {"logZ_trajectory": est.advance(), "ess_trajectory": est.ess, "steps_trajectory": float(est.last_steps),
               "resamplings_trajectory": float(est.last_resamplings)}
        reanchor = anchor == "ais" or (self.reanchor_every and (epoch + 1) % self.reanchor_every == 0)
        if reanchor:
            log_z = self._full_ais(epoch)
            if self.reanchor_every:
                out["logZ_drift"] = out["logZ_trajectory"] - log_z
            est.reanchor(log_z)
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
