"""Snapshot ensembles (Huang et al. 2017): cosine-annealed restarts, one model per cycle."""

from __future__ import annotations

import math
from pathlib import Path

from natural_bm.callbacks.callback import Callback
from natural_bm.callbacks.model_checkpoint import ModelCheckpoint
from natural_bm.callbacks.schedulers import LearningRateScheduler


class SnapshotModelCheckpoint(Callback):
    """Saves the model at the end of each of ``nb_snapshots`` cosine cycles of
    ``nb_epochs // nb_snapshots`` epochs as ``<fn_prefix>-<n>.pt`` (n = 1, 2, ...)."""

    def __init__(self, nb_epochs: int, nb_snapshots: int, fn_prefix: str = "Model") -> None:
        super().__init__()
        if nb_snapshots < 1 or nb_epochs < nb_snapshots:
            raise ValueError(f"need 1 <= nb_snapshots <= nb_epochs, got {nb_snapshots}, {nb_epochs}.")
        self.check = nb_epochs // nb_snapshots
        self.fn_prefix = str(fn_prefix)
        self.saved: list[Path] = []

    def state_dict(self) -> dict:
        return {"saved": [str(p) for p in self.saved]}

    def load_state_dict(self, state: dict) -> None:
        self.saved = [Path(p) for p in state["saved"]]

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.check == 0:
            path = Path(f"{self.fn_prefix}-{(epoch + 1) // self.check}.pt")
            self.model.save(path, include_optimizer=False)
            self.saved.append(path)


class SnapshotCallbackBuilder:
    """Builds the callbacks of a snapshot ensemble: ``nb_snapshots`` cycles over
    ``nb_epochs`` epochs, each annealing the learning rate from ``init_lr`` to 0
    along a cosine: lr(t) = init_lr / 2 (cos(pi (t mod T/M) / (T/M)) + 1)."""

    def __init__(self, nb_epochs: int, nb_snapshots: int, init_lr: float = 0.1) -> None:
        self.T, self.M, self.alpha_zero = int(nb_epochs), int(nb_snapshots), float(init_lr)
        if self.M < 1 or self.T < self.M:
            raise ValueError(f"need 1 <= nb_snapshots <= nb_epochs, got {nb_snapshots}, {nb_epochs}.")

    def cosine_anneal_schedule(self, t: int) -> float:
        period = self.T // self.M
        return self.alpha_zero / 2 * (math.cos(math.pi * (t % period) / period) + 1)

    def get_callbacks(self, model_prefix: str = "Model", monitor: str = "val_loss") -> list[Callback]:
        """[best-model checkpoint, cosine learning-rate schedule, per-cycle snapshots]."""
        return [
            ModelCheckpoint(f"{model_prefix}-Best.pt", monitor=monitor, save_best_only=True, save_weights_only=True),
            LearningRateScheduler(self.cosine_anneal_schedule),
            SnapshotModelCheckpoint(self.T, self.M, fn_prefix=model_prefix),
        ]
