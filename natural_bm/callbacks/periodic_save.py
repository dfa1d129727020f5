"""``PeriodicSave``: weights (and optimiser state) at chosen epochs."""

from __future__ import annotations

from pathlib import Path

import torch

from natural_bm.callbacks.callback import Callback
from natural_bm.callbacks.sample_callback import epoch_path
from natural_bm.io import atomic_path


class PeriodicSave(Callback):
    """Saves the model's weights at the listed epochs (all if empty).

    File names are templated with the epoch: ``{epoch}`` in ``weight_path`` is
    formatted (``"w_{epoch:03d}.pt"``), otherwise ``_epoch0007.pt`` is
    appended. With ``opt_path`` the training state (optimiser slots, persistent
    chains, weight decay, seed) is saved beside, templated the same way. Both
    are written atomically. To resume after epoch e::

        model.load_weights(weights_e); load_training_state(model, opt_e)
        model.fit(x, epochs=E, initial_epoch=e + 1, seed=same_seed)

    which gives the same weights as the uninterrupted run.
    """

    def __init__(self, weight_path, epoch_ls=(), opt_path=None) -> None:
        super().__init__()
        self.weight_path = weight_path
        self.opt_path = opt_path
        self.epoch_ls = set(epoch_ls)
        self.saved: list[Path] = []

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch_ls and epoch not in self.epoch_ls:
            return
        path = self.model.save(epoch_path(self.weight_path, epoch, ".pt"), include_optimizer=False)
        self.saved.append(path)
        if self.opt_path is not None:
            opt = epoch_path(self.opt_path, epoch, ".pt")
            with atomic_path(opt) as tmp:
                torch.save({"format": "natural_bm-training-state", "epoch": epoch,
                            "training": self.model.training_state()}, tmp)
            self.saved.append(opt)


def load_training_state(model, path) -> None:
    """Restore what ``PeriodicSave(opt_path=...)`` saved into ``model``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training-state file not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != "natural_bm-training-state":
        raise ValueError(f"{path} is not a natural_bm training-state file.")
    model.load_training_state(payload["training"])
