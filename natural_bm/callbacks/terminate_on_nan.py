"""``TerminateOnNaN``: stop training when the loss becomes NaN or infinite."""

from __future__ import annotations

import math

from natural_bm.callbacks.callback import Callback, epoch_label


class TerminateOnNaN(Callback):
    """Stops training when a batch's ``loss`` is NaN or inf, marking the model as diverged.

    It sets ``model.stop_training``, ``model.trainer.diverged = True`` and
    ``model.trainer.stop_reason`` (which epoch and batch). ``PeriodicSave`` then
    keeps the diverged weights out of the checkpoints, and ``natural-bm
    train`` keeps them out of ``model.pt``, exits with status 3 and says so in
    ``results.json`` and ``summary.txt``.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            epoch = getattr(self, "epoch", None)
            print(f"{epoch_label(epoch)}, batch {batch}: invalid loss {loss}, terminating training")
            self.terminated_on_batch = batch
            self.model.stop_training = True
            self.model.trainer.diverged = True
            self.model.trainer.stop_reason = f"diverged: loss {loss} at epoch {epoch}, batch {batch} (TerminateOnNaN)"
