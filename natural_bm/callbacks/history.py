"""``History``: every epoch's logs, returned by ``fit``."""

from __future__ import annotations

import math

import pandas as pd

from natural_bm.callbacks.callback import Callback


class History(Callback):
    """Records the epoch logs: ``history.epoch`` (list of epoch indices) and
    ``history.history`` ({key: list of values, one per epoch}).

    A key that appears only in some epochs is padded with NaN so every list
    has one value per recorded epoch (the same cells a ``CSVLogger`` leaves
    empty). ``fit`` adds one to every run and returns it (also ``model.history``).
    """

    def on_train_begin(self, logs=None):
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        n_before = len(self.epoch)
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, [math.nan] * n_before).append(v)
        for values in self.history.values():
            if len(values) < len(self.epoch):
                values.append(math.nan)

    def to_dataframe(self):
        """The history as a ``pandas.DataFrame`` indexed by epoch."""
        return pd.DataFrame(self.history, index=pd.Index(self.epoch, name="epoch"))
