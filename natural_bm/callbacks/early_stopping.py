"""``EarlyStopping``: stop when a monitored metric has stopped improving."""

from __future__ import annotations

from natural_bm.callbacks.callback import Callback, epoch_label
from natural_bm.callbacks.monitor import Monitor


class EarlyStopping(Callback):
    """Stops training after ``patience`` epochs without an improvement of ``monitor`` larger than
    ``min_delta``.

    Noise: ``val_pll`` (and ``pll``) are stochastic, since the pseudo-log-likelihood of each row is
    estimated from one visible unit flipped at random; an epoch's value over n_rows validation rows has a
    standard error of about n_visible * sd / sqrt(n_rows), sd the standard deviation over rows of the
    flipped unit's term log sigmoid(F(v~) - F(v)) (``natural_bm.callbacks.monitor`` says more). It does not
    shrink as training goes on, and with few validation rows it is larger than an epoch's improvement:
    patience then counts noise and a run stops on a bad draw. Against it, any of:

    * more validation rows (the error falls as 1 / sqrt(n_rows));
    * ``smoothing=k``: judge the mean of the last k epochs' values (noise / sqrt(k), a lag of (k - 1) / 2
      epochs), with a ``min_delta`` of about two standard errors of that mean;
    * a key without sampling noise: ``val_ll_exact`` from ``ExactLikelihoodCallback`` (the exact
      validation log-likelihood each epoch, for models with at most 2^20 states to enumerate), or
      ``val_ll_trajectory`` from ``TrajectoryAISCallback`` for larger ones.

    A monitored key that the logs lack (no validation data, or no callback that logs it) is warned about
    each epoch, naming what to pass: ``validation_data`` to ``fit``, or ``data.valid`` /
    ``data.valid_fraction`` in a config, or the callback that adds the key.

    Args:
        monitor: the log key.
        min_delta: the smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        verbose: 1: print a line when stopping.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (maximise log-likelihood keys and accuracies).
        baseline: the value to beat from the start.
        restore_best_weights: when stopping, put back the parameters of the best epoch (with ``smoothing``:
            the last epoch of the best window).
        smoothing: k >= 1: judge the mean of the last k values of ``monitor`` (epochs where it is NaN are
            skipped; the first k - 1 values are not judged: no best, no patience counted); 1 (default):
            each epoch's value.

    Attributes:
        stopped_epoch: the epoch it stopped at (0 if it did not).
        best_epoch: the epoch of the best (smoothed) value.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 smoothing: int = 1) -> None:
        super().__init__()
        self.monitor = Monitor(monitor, mode, min_delta, baseline, smoothing)
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
        current = self.monitor.observe(logs)
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
            what = self.monitor.describe()
            self.model.trainer.stop_reason = (f"early stopping at epoch {epoch}: {what} did not improve for "
                                              f"{self.patience} epochs (best {self.monitor.best:.6g} at epoch "
                                              f"{self.best_epoch}){restored}")
            if self.restore_best_weights and self.best_weights is not None:
                for k, v in self.model.parameter_dict().items():
                    v.copy_(self.best_weights[k])
            if self.verbose:
                print(f"{epoch_label(epoch)}: early stopping ({what} best {self.monitor.best:.5f}).")
