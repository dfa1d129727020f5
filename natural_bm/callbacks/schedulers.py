"""``LearningRateScheduler`` and ``MomentumRateScheduler``."""

from __future__ import annotations

import inspect

from natural_bm.callbacks.callback import Callback


def _call(schedule, epoch: int, current: float) -> float:
    try:
        n_args = len(inspect.signature(schedule).parameters)
    except (TypeError, ValueError):
        n_args = 2
    value = schedule(epoch, current) if n_args >= 2 else schedule(epoch)
    value = float(value)
    if value != value or value < 0:
        raise ValueError(f"schedule returned {value} at epoch {epoch}; it must be a number >= 0.")
    return value


class _HyperparameterScheduler(Callback):
    attribute = ""

    def __init__(self, schedule, verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _attr(self, opt) -> str:
        return self.attribute

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        attr = self._attr(opt)
        if not hasattr(opt, attr):
            raise ValueError(f"{type(opt).__name__} has no `{attr}` to schedule.")
        value = _call(self.schedule, epoch, getattr(opt, attr))
        setattr(opt, attr, value)
        if self.verbose:
            print(f"Epoch {epoch + 1}: {type(self).__name__} sets {attr} to {value:g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[self.attribute] = float(getattr(self.model.optimizer, self._attr(self.model.optimizer)))


class LearningRateScheduler(_HyperparameterScheduler):
    """Sets ``optimizer.lr = schedule(epoch, lr)`` (or ``schedule(epoch)``) at the start
    of each epoch and logs ``lr``."""

    attribute = "lr"


class MomentumRateScheduler(_HyperparameterScheduler):
    """Sets the momentum (SGD ``momentum``, Adam ``beta_1``) to ``schedule(epoch, value)``
    at the start of each epoch and logs it as ``momentum``."""

    attribute = "momentum"

    def _attr(self, opt) -> str:
        return "momentum" if hasattr(opt, "momentum") else "beta_1"
