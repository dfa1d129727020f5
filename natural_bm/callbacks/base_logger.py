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
    the end of the epoch: kept per batch (a list append), read in one transfer, and summed as
    floats in batch order, so the epoch numbers are the same as from float logs.
    """

    batch_logs_on_device = True

    def __init__(self, stateful_metrics=None) -> None:
        super().__init__()
        self.stateful_metrics = set(stateful_metrics or [])

    def on_epoch_begin(self, epoch, logs=None):
        self.seen = 0
        self.totals: dict[str, float] = {}
        self.pending: dict[str, tuple[list, list]] = {}  # device values and their batch sizes, per key

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
                values, sizes = self.pending.setdefault(k, ([], []))
                values.append(v if v.dim() == 0 and not v.requires_grad else v.detach().reshape(()))
                sizes.append(size)
            else:
                self.totals[k] = self.totals.get(k, 0.0) + v * size

    def _read_pending(self) -> None:
        """Add the device values kept this epoch to the totals, in batch order (one transfer per key)."""
        for k, (values, sizes) in self.pending.items():
            total = self.totals.get(k, 0.0)
            for v, n in zip(torch.stack(values).double().tolist(), sizes, strict=True):
                total += v * n
            self.totals[k] = total
        self.pending = {}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        self._read_pending()
        for k, v in self.totals.items():
            if k in self.stateful_metrics:
                logs[k] = float(v) if isinstance(v, torch.Tensor) else v
            elif self.seen:
                logs[k] = v / self.seen
