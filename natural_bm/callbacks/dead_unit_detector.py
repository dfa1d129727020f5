"""``DeadUnitDetector``: hidden units that are (almost) never or always on."""

from __future__ import annotations

import torch

from natural_bm.callbacks.callback import Callback
from natural_bm.validation import as_data_tensor, warn_user


class DeadUnitDetector(Callback):
    """After every epoch computes each hidden unit's mean activation
    E_data[p(h_j = 1 | v)] over ``x_train`` (at most ``max_rows`` rows; for a
    DBM the mean-field means of every hidden layer) and reports units below
    ``low`` (dead: almost never on) and above ``high`` (saturated: almost
    always on). Adds ``dead_units`` and ``saturated_units`` (counts) to the
    logs; warns when more than ``warn_fraction`` (10%) of the units are dead or
    saturated, or with ``verbose=True`` when any is. ``dead``/``saturated``
    hold the unit indices of the last check.
    """

    produces_logs = True

    def __init__(self, x_train, verbose: bool = False, low: float = 0.01, high: float = 0.99,
                 warn_fraction: float = 0.1, max_rows: int = 10_000) -> None:
        super().__init__()
        self.x_train = x_train
        self.verbose = verbose
        self.low, self.high, self.warn_fraction, self.max_rows = low, high, warn_fraction, max_rows

    def on_epoch_end(self, epoch, logs=None):
        m = self.model
        x = as_data_tensor(self.x_train, "x_train", m.n_input, device=m.device, dtype=m.dtype)[: self.max_rows]
        with torch.no_grad():
            mean = torch.cat([m.features(x[i : i + 1000]) for i in range(0, x.shape[0], 1000)]).mean(0)
        self.mean_activation = mean
        self.dead = torch.nonzero(mean < self.low).flatten().tolist()
        self.saturated = torch.nonzero(mean > self.high).flatten().tolist()
        n = mean.numel()
        if logs is not None:
            logs["dead_units"] = float(len(self.dead))
            logs["saturated_units"] = float(len(self.saturated))
        for kind, units in (("dead", self.dead), ("saturated", self.saturated)):
            if units and (self.verbose or len(units) > self.warn_fraction * n):
                warn_user(f"epoch {epoch}: {len(units)} of {n} hidden units are {kind} "
                              f"(mean activation {'<' if kind == 'dead' else '>'} "
                              f"{self.low if kind == 'dead' else self.high}): {units[:20]}",
                              RuntimeWarning)
