"""``ExactLikelihoodCallback``: the exact log Z and log-likelihoods in the epoch logs, for small models."""

from __future__ import annotations

import math

from natural_bm.callbacks.callback import Callback
from natural_bm.estimators import log_likelihood, log_partition_exact
from natural_bm.validation import check_positive_int

EXACT_KEYS = ("logZ_exact", "train_ll_exact", "val_ll_exact")


class ExactLikelihoodCallback(Callback):
    """Logs log Z by enumeration and the log-likelihoods it gives, at every ``every``-th epoch and the last.

    The epoch logs get (prefixed by ``name``):

    * ``logZ_exact``: ``log_partition_exact`` of the model (nats);
    * ``train_ll_exact``: the mean log-likelihood of the fit's training monitoring rows
      (``params["train_data"]``), nats per image;
    * ``val_ll_exact``: the same over the validation data (``validation_data`` of ``fit``; NaN without).

    For an RBM these are exact; for a DBM the log-likelihoods are the mean-field bound with the exact
    log Z (``natural_bm.estimators.log_likelihood``), a deterministic lower bound. Neither carries
    sampling noise, unlike ``val_pll`` (``natural_bm.callbacks.monitor`` gives its error), so
    ``EarlyStopping(monitor="val_ll_exact")`` stops on the model, not on a draw. Epochs where it does not
    run carry NaN in these columns, which ``EarlyStopping`` skips.

    Cost: ``model.n_exact_states()`` states each time (2^min(n_visible, n_hidden) for an RBM) times the
    size of the other layer, and one free energy per monitored row.

    Args:
        every: epochs between evaluations (the last epoch is always evaluated).
        validation: also ``val_ll_exact``.
        name: prefix of the log keys.
        max_exact_states: the largest enumeration allowed; a larger model is refused when training starts.

    Raises:
        ValueError: at ``on_train_begin``, for a model with more than ``max_exact_states`` states to
            enumerate, or with no binary parity to enumerate.
    """

    produces_logs = True

    def __init__(self, every: int = 1, validation: bool = True, name: str = "", max_exact_states: int = 2**20) -> None:
        super().__init__()
        self.every = check_positive_int(every, "every")
        self.validation = bool(validation)
        self.name = name
        self.max_exact_states = check_positive_int(max_exact_states, "max_exact_states")

    def keys(self) -> list[str]:
        keys = EXACT_KEYS if self.validation else EXACT_KEYS[:2]
        return [self.name + k for k in keys]

    def on_train_begin(self, logs=None):
        try:
            states = self.model.n_exact_states()
        except ValueError as err:
            raise ValueError(f"ExactLikelihoodCallback: {err}") from None
        if states > self.max_exact_states:
            raise ValueError(f"ExactLikelihoodCallback: the model has {states:,} states to enumerate, more than "
                             f"max_exact_states={self.max_exact_states:,}; follow log Z with TrajectoryAISCallback "
                             f"(val_ll_trajectory) or AISCallback instead, or raise max_exact_states.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for k in self.keys():
            logs.setdefault(k, math.nan)
        last = epoch == self.params.get("epochs", epoch + 1) - 1
        if not ((epoch + 1) % self.every == 0 or last) or self.model.stop_training:
            return  # not this epoch, or training stopped inside it (not the planned weights)
        logs.update({self.name + k: v for k, v in self.evaluate().items()})

    def evaluate(self) -> dict[str, float]:
        """Enumerate now; returns the un-prefixed values (``val_ll_exact`` only with validation data)."""
        log_z = log_partition_exact(self.model, progress=False)
        out = {"logZ_exact": log_z}
        train, valid = self.params.get("train_data"), self.params.get("validation_data")
        if train is not None:
            out["train_ll_exact"] = log_likelihood(self.model, train, log_z)[0]
        if self.validation and valid is not None:
            out["val_ll_exact"] = log_likelihood(self.model, valid, log_z)[0]
        return out
