"""``ModelCheckpoint``: save the model every ``period`` epochs, or only when it improves."""

from __future__ import annotations

from pathlib import Path

from natural_bm.callbacks.callback import Callback, epoch_label
from natural_bm.callbacks.monitor import Monitor


class ModelCheckpoint(Callback):
    """Saves the model after epochs (atomically, through ``model.save``).

    ``filepath`` may hold ``{epoch:02d}`` (0-based, as log.csv and every file name
    of the library; Keras counts from 1 here) and any log
    key, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.pt"``. With
    ``save_best_only`` the file is written only when ``monitor`` improves;
    ``mode='auto'`` maximises log-likelihood keys (``pll``, ``val_ll``, ...)
    and minimises losses. ``save_weights_only`` leaves out the training state
    (optimiser slots, persistent chains). ``saved`` lists the written paths.
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", period: int = 1) -> None:
        super().__init__()
        self.filepath = str(filepath)
        self.monitor = Monitor(monitor, mode)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.period = max(1, int(period))
        self.epochs_since_last_save = 0
        self.saved: list[Path] = []

    def state_dict(self) -> dict:
        return {"epochs_since_last_save": self.epochs_since_last_save, "monitor": self.monitor.state_dict(),
                "saved": [str(p) for p in self.saved]}

    def load_state_dict(self, state: dict) -> None:
        self.epochs_since_last_save = int(state["epochs_since_last_save"])
        self.monitor.load_state_dict(state["monitor"])
        self.saved = [Path(p) for p in state["saved"]]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs_since_last_save += 1
        if self.epochs_since_last_save < self.period:
            return
        self.epochs_since_last_save = 0
        try:
            path = Path(self.filepath.format(epoch=epoch, **logs))
        except KeyError as err:
            raise ValueError(f"ModelCheckpoint filepath names {err} which is not a log key ({sorted(logs)}).") from err
        if self.save_best_only:
            current = self.monitor.value(logs)
            if current is None or not self.monitor.improved(current):
                if self.verbose and current is not None:
                    print(f"{epoch_label(epoch)}: {self.monitor.key} did not improve from {self.monitor.best:.5f}")
                return
            if self.verbose:
                print(f"{epoch_label(epoch)}: {self.monitor.key} improved from {self.monitor.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.monitor.best = current
        elif self.verbose:
            print(f"{epoch_label(epoch)}: saving model to {path}")
        self.model.save(path, include_optimizer=not self.save_weights_only)
        self.saved.append(path)
