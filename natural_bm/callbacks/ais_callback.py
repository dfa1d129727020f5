"""``AISCallback``: log Z and log-likelihoods in the epoch logs."""

from __future__ import annotations

import math

from natural_bm.callbacks.callback import Callback
from natural_bm.estimators.ais_engine import EngineOptions
from natural_bm.estimators.report import AISRuns, evaluate_model

AIS_KEYS = ("logZ", "logZ_lo", "logZ_hi", "ais_ess", "train_ll", "val_ll")
EXACT_KEYS = ("logZ_exact", "train_ll_exact", "val_ll_exact")


class AISCallback(Callback):
    """Estimates log Z by AIS at chosen epochs and logs it with the log-likelihoods.

    Adds to the epoch logs: ``logZ`` (AIS estimate, nats), ``logZ_lo`` and
    ``logZ_hi`` (the -3 and +3 sigma band of the importance weights),
    ``ais_ess`` (their effective sample size, 1 to n_runs; AIS warns below 10),
    ``train_ll`` and ``val_ll`` (mean log-likelihood, nats per image, of the
    training monitoring subset and of the validation data, using ``logZ``),
    and with ``exact=True`` ``logZ_exact``, ``train_ll_exact``, ``val_ll_exact``
    by enumeration. Epochs where it does not run carry NaN in these columns,
    so ``CSVLogger`` and ``History`` always have them. Keys get ``name`` as
    a prefix (``name="rbm_"`` gives ``rbm_logZ``...).

    Args:
        model: the model being trained (the fitted model is used when None).
        n_runs, n_betas: AIS runs and number of betas (None: 14,501-beta schedule).
        epoch_ls: epochs (0-based) at which to run; every epoch if empty.
        name: prefix of the log keys.
        exact: also compute the exact values (skipped, NaN, when infeasible:
            more than ``max_exact_states`` states).
        train_data, valid_data: data for the log-likelihoods; default: the
            fit's training monitoring subset (first 10,000 rows) and validation
            data. The AIS base model uses the training data.
        seed: AIS seed (epoch e uses seed + e).
        compile: compile the AIS steps (``EngineOptions.jit_compile``: True, False or ``"auto"``).
        max_exact_states: ``exact`` is skipped (NaN) for models with more states to enumerate.
        parity: the layers AIS anneals (``"auto"``, 0 or 1; see ``natural_bm.estimators.AIS``).
    """

    produces_logs = True

    def __init__(
        self,
        model=None,
        n_runs: int = 100,
        n_betas: int | None = None,
        epoch_ls=(),
        name: str = "",
        exact: bool = False,
        train_data=None,
        valid_data=None,
        seed: int = 0,
        compile: bool | str = "auto",
        max_exact_states: int = 2**22,
        parity: int | str = "auto",
    ) -> None:
        super().__init__()
        self.ais_model = model
        self.n_runs = n_runs
        self.n_betas = n_betas
        self.epoch_ls = set(epoch_ls)
        self.name = name
        self.exact = exact
        self.train_data = train_data
        self.valid_data = valid_data
        self.seed = seed
        self.compile = compile
        self.max_exact_states = max_exact_states
        self.parity = parity
        self.results: dict[int, dict[str, float]] = {}

    def state_dict(self) -> dict:
        return {"results": {str(e): dict(r) for e, r in self.results.items()}} if self.results else {}

    def load_state_dict(self, state: dict) -> None:
        self.results = {int(e): dict(r) for e, r in state["results"].items()}

    def keys(self) -> list[str]:
        keys = list(AIS_KEYS) + (list(EXACT_KEYS) if self.exact else [])
        return [self.name + k for k in keys]

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for k in self.keys():
            logs.setdefault(k, math.nan)
        if self.epoch_ls and epoch not in self.epoch_ls:
            return
        if self.model is not None and self.model.stop_training:
            return  # training stopped inside this epoch (a pre-emption, divergence): not the planned weights
        logs.update({self.name + k: v for k, v in self.evaluate(epoch).items() if self.name + k in logs})

    def evaluate(self, epoch: int = 0) -> dict[str, float]:
        """Run the estimators now (``natural_bm.estimators.report.evaluate_model``); returns the
        un-prefixed values: the keys above, and ``runs``, ``betas`` and ``annealed_layers``."""
        model = self.ais_model or self.model
        train = self.train_data if self.train_data is not None else self.params.get("train_data")
        valid = self.valid_data if self.valid_data is not None else self.params.get("validation_data")
        exact = self.exact and model.n_exact_states() <= self.max_exact_states
        report = evaluate_model(model, data={"train": train, "val": valid}, base_data=train,
                                ais=AISRuns(self.n_runs, self.n_betas, self.parity, self.seed + epoch), exact=exact,
                                progress=self.params.get("verbose", 0) == 1,
                                engine=EngineOptions(jit_compile=self.compile))
        values = report.to_dict()
        out = {k: values.get(k, math.nan) for k in AIS_KEYS}
        out.update(runs=values["runs"], betas=values["betas"], annealed_layers=values["annealed_layers"])
        if self.exact:
            out.update({k: values.get(k, math.nan) for k in EXACT_KEYS})
        self.results[epoch] = out
        return out
