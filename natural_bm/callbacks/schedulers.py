"""``LearningRateScheduler``, ``MomentumRateScheduler`` and ``GibbsStepsScheduler``."""

from __future__ import annotations

import inspect

from natural_bm.callbacks.callback import Callback, epoch_label


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
    produces_logs = True  # runs before the loggers, so its key is in every epoch's row

    def __init__(self, schedule, verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _target(self):
        """The object whose attribute is scheduled (the optimiser; the algorithm for ``k``)."""
        return self.model.optimizer

    def _attr(self, opt) -> str:
        return self.attribute

    def _convert(self, value: float):
        return value

    def on_epoch_begin(self, epoch, logs=None):
        opt = self._target()
        attr = self._attr(opt)
        if not hasattr(opt, attr):
            raise ValueError(f"{type(opt).__name__} has no `{attr}` to schedule.")
        value = self._convert(_call(self.schedule, epoch, getattr(opt, attr)))
        setattr(opt, attr, value)
        if self.verbose:
            print(f"{epoch_label(epoch)}: {type(self).__name__} sets {attr} to {value:g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            target = self._target()
            logs[self.attribute] = float(getattr(target, self._attr(target)))


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


class GibbsStepsScheduler(_HyperparameterScheduler):
    """Sets the training algorithm's number of Gibbs steps per update, ``k``, to
    ``schedule(epoch, k)`` (or ``schedule(epoch)``, rounded to an int >= 1) at the
    start of each epoch and logs it as ``k``; e.g. CD-k with k growing from 1 to
    25: ``GibbsStepsScheduler(lambda e: min(25, 1 + e // 4))``."""

    attribute = "k"

    def _target(self):
        return self.model.trainer.algorithm

    def _convert(self, value: float) -> int:
        k = int(round(value))
        if k < 1:
            raise ValueError(f"GibbsStepsScheduler: k must be >= 1, the schedule gave {value}.")
        return k
