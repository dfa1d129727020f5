"""``PlotCallback``: training curves re-drawn from the CSV log after each epoch."""

from __future__ import annotations

import time
from pathlib import Path

from natural_bm.callbacks.callback import Callback
from natural_bm.viz import plot_history


class PlotCallback(Callback):
    """After each epoch reads ``csv_filepath`` (written by ``CSVLogger``) and
    saves ``<save_folder>/history.png`` (``natural_bm.viz.plot_history``): each
    metric with its validation twin on shared axes, log Z with its +-3 sigma
    band and the exact value when present, and the log-likelihoods; values
    measured once (the final AIS log Z, log-likelihoods, effective sample size)
    are written out in one "final evaluation" panel ("measured once" while they
    are not all the last epoch's, as in a run still going), and columns that never
    change (a fixed momentum, OptimizerSpy's ``decay``) above the panels. NaN
    cells and missing columns are skipped. ``layout`` holds the last drawing's
    {panel title: columns}.

    Drawing takes 1-3 s on 2 CPU cores, longer than a small model's epoch; with
    ``min_interval`` (seconds) an epoch's end re-draws only when that long has
    passed since training began or since the last drawing, and the end of
    training draws the epochs not yet drawn. ``0`` draws after every epoch.

    Runs after ``CSVLogger`` whatever the order of the callbacks list.
    """

    order = 2  # after the CSV is written

    def __init__(self, save_folder, csv_filepath, filename: str = "history.png", min_interval: float = 0.0) -> None:
        super().__init__()
        if not min_interval >= 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval!r}.")
        self.save_folder = Path(save_folder)
        self.csv_filepath = Path(csv_filepath)
        self.filename = filename
        self.min_interval = float(min_interval)
        self.layout: dict = {}
        self._last_drawn = time.monotonic()
        self._stale = False

    def on_train_begin(self, logs=None):
        self._last_drawn, self._stale = time.monotonic(), False

    def on_epoch_end(self, epoch, logs=None):
        self._stale = True
        if time.monotonic() - self._last_drawn >= self.min_interval:
            self.plot()

    def on_train_end(self, logs=None):
        if self._stale:
            self.plot()

    def plot(self) -> Path | None:
        """Draw the figure now from the CSV file; returns its path (None when there is no CSV yet)."""
        if not self.csv_filepath.is_file():
            return None
        path = self.save_folder / self.filename
        _, self.layout = plot_history(self.csv_filepath, path)
        self._last_drawn, self._stale = time.monotonic(), False
        return path
