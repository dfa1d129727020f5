"""``BaseLogger``: epoch averages of the batch metrics."""

from __future__ import annotations

import torch

from natural_bm.callbacks.callback import Callback


class BaseLogger(Callback):
    """Fills the epoch logs with the size-weighted epoch mean of each batch metric.

    Keys listed in ``stateful_metrics`` are not averaged: their last batch
    value is reported instead. ``size`` and ``batch`` are never averaged. It is
    added to every ``fit`` automatically, first in the list.

    Device values (``fit``'s batch loss) are summed on the device in float64 and read once, at
    the end of the epoch: the same numbers as summing the floats, without a round-trip per batch.
    """

    batch_logs_on_device = True

    def __init__(self, stateful_metrics=None) -> None:
        super().__init__()
        self.stateful_metrics = set(stateful_metrics or [])

    def on_epoch_begin(self, epoch, logs=None):
        self.seen = 0
        self.totals: dict[str, float] = {}

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        size = logs.get("size", 0)
        self.seen += size
        for k, v in logs.items():
            if k in ("size", "batch"):
                continue
            if k in self.stateful_metrics:
                self.totals[k] = v
            elif isinstance(v, torch.Tensor):
                self.totals[k] = self.totals.get(k, 0.0) + v.detach().double() * size
            else:
                self.totals[k] = self.totals.get(k, 0.0) + v * size

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for k, v in self.totals.items():
            if k in self.stateful_metrics:
                logs[k] = float(v) if isinstance(v, torch.Tensor) else v
            elif self.seen:
                logs[k] = float(v / self.seen)
