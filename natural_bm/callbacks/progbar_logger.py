"""``ProgbarLogger``: a tqdm progress bar per epoch."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from natural_bm.callbacks.callback import Callback, epoch_label


class ProgbarLogger(Callback):
    """Shows one tqdm bar per epoch, counting batches (``count_mode='steps'``)
    or samples (``'samples'``), with the running loss, then the epoch's logs.

    ``fit(verbose=1)`` adds one automatically; ``verbose=2`` prints one line
    per epoch instead of a bar. Keys without a value this epoch (NaN, such as
    the AIS columns between AIS epochs) are left out of the epoch line.

    The running loss is summed on the device and read every 10th batch, and only while a bar
    is shown: ``verbose=2`` costs no round-trip per batch.
    """

    batch_logs_on_device = True

    def __init__(self, count_mode: str = "steps", stateful_metrics=None, file=None) -> None:
        super().__init__()
        if count_mode not in ("steps", "samples"):
            raise ValueError(f"count_mode must be 'steps' or 'samples', got {count_mode!r}.")
        self.count_mode = count_mode
        self.stateful_metrics = set(stateful_metrics or [])
        self.file = file
        self.bar = None

    def on_train_begin(self, logs=None):
        self.verbose = self.params.get("verbose", 1)
        self.epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        total = self.params.get("steps") if self.count_mode == "steps" else self.params.get("samples")
        if self.verbose == 1:
            self.bar = tqdm(
                total=total,
                desc=epoch_label(epoch, self.epochs),
                unit="batch" if self.count_mode == "steps" else "sample",
                file=self.file or sys.stderr,
                leave=True,
                dynamic_ncols=True,
            )
        self._loss_sum, self._seen = 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is None:
            return
        logs = logs or {}
        size = logs.get("size", 1)
        if "loss" in logs:
            self._loss_sum = self._loss_sum + logs["loss"] * size
            self._seen += size
        self.bar.update(1 if self.count_mode == "steps" else size)
        if self._seen and batch % 10 == 0:
            self.bar.set_postfix(loss=f"{float(self._loss_sum) / self._seen:.4f}", refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        text = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items()
                          if isinstance(v, (int, float)) and v == v)  # NaN: no value this epoch (e.g. AIS)
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            print(f"{epoch_label(epoch, self.epochs)} - {text}", file=self.file or sys.stdout, flush=True)
