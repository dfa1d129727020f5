"""``OptimizerSpy``: the optimiser's hyper-parameters in every epoch's logs."""

from __future__ import annotations

from natural_bm.callbacks.callback import Callback


class OptimizerSpy(Callback):
    """Adds the optimiser's hyper-parameters to the epoch logs (so they land in
    the CSV): ``lr``, ``momentum``, ``nesterov``, ``decay`` for SGD; ``lr``,
    ``beta_1``, ``beta_2``, ``epsilon``, ``decay`` for Adam; plus ``lr_t``, the
    learning rate after decay used by the next step, and ``iterations``
    (text settings such as ``decay_mode`` are left out: logs hold numbers).
    Values are those in force at the end of the epoch."""

    produces_logs = True

    def __init__(self, prefix: str = "") -> None:
        super().__init__()
        self.prefix = prefix

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        if logs is None or opt is None:
            return
        values = {k: float(v) for k, v in opt.hyperparameters().items() if isinstance(v, (int, float))}
        values["lr_t"] = float(opt.current_lr())
        values["iterations"] = float(opt.iterations)
        logs.update({self.prefix + k: v for k, v in values.items()})
