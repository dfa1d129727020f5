"""``EarlyStopping``: stop when a monitored metric has stopped improving."""

from __future__ import annotations

from natural_bm.callbacks.callback import Callback, epoch_label
from natural_bm.callbacks.monitor import Monitor


class EarlyStopping(Callback):
    """Stops training after ``patience`` epochs without an improvement larger
    than ``min_delta`` of ``monitor`` (direction from ``mode``; 'auto' maximises
    log-likelihood keys). ``baseline``: the value to beat from the start.
    ``restore_best_weights`` puts back the parameters of the best epoch when
    stopping. ``stopped_epoch`` is the epoch it stopped at (0 if it did not)."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False) -> None:
        super().__init__()
        self.monitor = Monitor(monitor, mode, min_delta, baseline)
        self.patience = int(patience)
        self.verbose = verbose
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = None
        self.monitor.reset()

    def state_dict(self) -> dict:
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best_epoch": self.best_epoch,
                "best_weights": self.best_weights, "monitor": self.monitor.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = int(state["wait"]), int(state["stopped_epoch"]), \
            state["best_epoch"]
        bw = state["best_weights"]
        self.best_weights = None if bw is None else {
            k: v.to(device=self.model.device, dtype=self.model.dtype) for k, v in bw.items()}
        self.monitor.load_state_dict(state["monitor"])

    def on_epoch_end(self, epoch, logs=None):
        current = self.monitor.value(logs)
        if current is None:
            return
        if self.monitor.improved(current):
            self.monitor.best = current
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = {k: v.detach().clone() for k, v in self.model.parameter_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            restored = ", best weights restored" if self.restore_best_weights and self.best_weights is not None \
                else ""
            self.model.trainer.stop_reason = (f"early stopping at epoch {epoch}: {self.monitor.key} did not improve "
                                              f"for {self.patience} epochs (best {self.monitor.best:.6g} at epoch "
                                              f"{self.best_epoch}){restored}")
            if self.restore_best_weights and self.best_weights is not None:
                for k, v in self.model.parameter_dict().items():
                    v.copy_(self.best_weights[k])
            if self.verbose:
                print(f"{epoch_label(epoch)}: early stopping ({self.monitor.key} best {self.monitor.best:.5f}).")
