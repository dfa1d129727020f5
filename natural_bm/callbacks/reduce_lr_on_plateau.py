"""``ReduceLROnPlateau``: lower the learning rate when a metric stops improving."""

from __future__ import annotations

from natural_bm.callbacks.callback import Callback, epoch_label
from natural_bm.callbacks.monitor import Monitor


class ReduceLROnPlateau(Callback):
    """Multiplies ``optimizer.lr`` by ``factor`` (never below ``min_lr``) after
    ``patience`` epochs without an improvement larger than ``min_delta``, then
    waits ``cooldown`` epochs before counting again. Logs ``lr``."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau needs 0 < factor < 1, got {factor}.")
        self.monitor = Monitor(monitor, mode, min_delta)
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.cooldown_counter = 0
        self.monitor.reset()

    def state_dict(self) -> dict:
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter, "monitor": self.monitor.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.wait, self.cooldown_counter = int(state["wait"]), int(state["cooldown_counter"])
        self.monitor.load_state_dict(state["monitor"])

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        if logs is not None:
            logs["lr"] = float(opt.lr)
        current = self.monitor.value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor.improved(current):
            self.monitor.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.lr)
                if old > self.min_lr:
                    opt.lr = max(old * self.factor, self.min_lr)
                    if self.verbose:
                        print(f"{epoch_label(epoch)}: ReduceLROnPlateau reducing learning rate to {opt.lr:g}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
