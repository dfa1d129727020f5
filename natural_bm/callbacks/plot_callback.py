"""``PlotCallback``: training curves re-drawn from the CSV log after each epoch."""

from __future__ import annotations

from pathlib import Path

from natural_bm.callbacks.callback import Callback


class PlotCallback(Callback):
    """After each epoch reads ``csv_filepath`` (written by ``CSVLogger``) and
    saves ``<save_folder>/history.png``: each metric with its validation twin
    on shared axes, log Z with its +-3 sigma band and the exact value when
    present, and the log-likelihoods. NaN cells and missing columns are skipped.

    Runs after ``CSVLogger`` whatever the order of the callbacks list.
    """

    order = 2  # after the CSV is written

    def __init__(self, save_folder, csv_filepath, filename: str = "history.png") -> None:
        super().__init__()
        self.save_folder = Path(save_folder)
        self.csv_filepath = Path(csv_filepath)
        self.filename = filename
        self.layout: dict = {}

    def on_epoch_end(self, epoch, logs=None):
        self.plot()

    def plot(self) -> Path | None:
        from natural_bm.viz import plot_history

        if not self.csv_filepath.is_file():
            return None
        path = self.save_folder / self.filename
        _, self.layout = plot_history(self.csv_filepath, path)
        return path
