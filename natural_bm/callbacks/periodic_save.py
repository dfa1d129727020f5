"""``PeriodicSave``: weights (and the training state) at chosen epochs."""

from __future__ import annotations

import math
from pathlib import Path

from natural_bm.callbacks.callback import Callback
from natural_bm.callbacks.callback_list import restore_callback_states
from natural_bm.callbacks.monitor import Monitor
from natural_bm.callbacks.sample_callback import epoch_path
from natural_bm.io import load_torch_checked, save_torch_checked, writes_files
from natural_bm.training.trainer import Trainer
from natural_bm.validation import warn_user

STATE_FORMAT = "natural_bm-training-state"


class PeriodicSave(Callback):
    """Saves the model's weights at the listed epochs (all if empty).

    File names are templated with the epoch: ``{epoch}`` in ``weight_path`` is
    formatted (``"w_{epoch:03d}.pt"``), otherwise ``_epoch0007.pt`` is
    appended. With ``opt_path`` the training state is saved beside, templated
    the same way: optimiser slots, persistent chains, weight decay, seed, the
    state of every stateful callback of the run (``Callback.state_dict``),
    why training stopped, if it did, and ``run_config`` (a dict the caller
    passes, e.g. the ``natural-bm train`` config, which ``--resume`` compares
    with the results folder's ``config.json``). Both files are written atomically
    with a checksum. To resume after epoch e::

        model.load_weights(weights_e)
        load_training_state(model, opt_e, callbacks)   # the run's callbacks, built as before
        model.fit(x, epochs=E, callbacks=callbacks, initial_epoch=e + 1, seed=same_seed)

    which gives the same weights and logs as the uninterrupted run.

    Weights that are not finite (a diverged run, see ``TerminateOnNaN``) are
    never saved: the last finite checkpoint stays the newest one, and a
    ``RuntimeWarning`` says so.

    Retention: with ``keep_last=N`` only the newest N saved epochs keep their
    files, plus, with ``keep_best=KEY``, the epoch where the log key ``KEY``
    was best (``mode`` 'auto' maximises log-likelihood keys). The newest
    checkpoint is always kept, so resuming is unaffected.
    """

    def __init__(self, weight_path, epoch_ls=(), opt_path=None, keep_last: int | None = None,
                 keep_best: str | None = None, mode: str = "auto", run_config: dict | None = None) -> None:
        super().__init__()
        self.run_config = run_config  # stored in each training-state file (the runner compares it at resume)
        if keep_last is not None and (isinstance(keep_last, bool) or int(keep_last) != keep_last or keep_last < 1):
            raise ValueError(f"PeriodicSave keep_last must be an integer >= 1 or None, got {keep_last!r}.")
        self.weight_path = weight_path
        self.opt_path = opt_path
        self.epoch_ls = set(epoch_ls)
        self.keep_last = None if keep_last is None else int(keep_last)
        self.best = Monitor(keep_best, mode) if keep_best else None
        self.best_epoch: int | None = None
        self.saved: list[Path] = []
        self.saved_epochs: list[int] = []

    def state_dict(self) -> dict:
        return {"saved": [str(p) for p in self.saved], "saved_epochs": list(self.saved_epochs),
                "best_epoch": self.best_epoch, "best": None if self.best is None else self.best.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.saved = [Path(p) for p in state["saved"]]
        self.saved_epochs = [int(e) for e in state.get("saved_epochs", [])]
        self.best_epoch = state.get("best_epoch")
        if self.best is not None and state.get("best") is not None:
            self.best.load_state_dict(state["best"])

    def _files(self, epoch: int) -> list[Path]:
        files = [epoch_path(self.weight_path, epoch, ".pt")]
        if self.opt_path is not None:
            files.append(epoch_path(self.opt_path, epoch, ".pt"))
        return files

    def _prune(self) -> None:
        """Delete the files of saved epochs that are neither among the newest ``keep_last`` nor the best."""
        if self.keep_last is None:
            return
        keep = set(self.saved_epochs[-self.keep_last:]) | ({self.best_epoch} if self.best_epoch is not None else set())
        for epoch in [e for e in self.saved_epochs if e not in keep]:
            for path in self._files(epoch):
                if writes_files():  # (rank 0 of a process group)
                    path.unlink(missing_ok=True)
                if path in self.saved:
                    self.saved.remove(path)
            self.saved_epochs.remove(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch_ls and epoch not in self.epoch_ls:
            return
        bad = self.model.non_finite_parameters()
        trainer = self.model.trainer
        if (trainer is not None and trainer.diverged) or bad:
            warn_user(f"PeriodicSave: epoch {epoch} not saved: the weights diverged "
                          f"({', '.join(bad) or trainer.stop_reason}); the last finite checkpoint is kept.",
                          RuntimeWarning)
            return
        if self.best is not None:
            value = (logs or {}).get(self.best.key)
            if value is not None and math.isfinite(value) and self.best.improved(float(value)):
                self.best.best, self.best_epoch = float(value), epoch
        path = self.model.save(epoch_path(self.weight_path, epoch, ".pt"), include_optimizer=False)
        self.saved.append(path)
        self.saved_epochs.append(epoch)
        if self.opt_path is not None:
            opt = epoch_path(self.opt_path, epoch, ".pt")
            self.saved.append(opt)
            states = self.callback_list.state_dict() if self.callback_list is not None else {}
            save_torch_checked({"format": STATE_FORMAT, "epoch": epoch,
                                "training": None if trainer is None else trainer.state_dict(),
                                "callbacks": states, "stop_reason": None if trainer is None else trainer.stop_reason,
                                "run_config": self.run_config}, opt)
        self._prune()


def read_training_state(path) -> dict:
    """The verified payload of a training-state file: ``epoch``, ``training``, ``callbacks``, ``stop_reason``.

    Raises FileNotFoundError, or ValueError (one line naming the file) if it is damaged.
    """
    payload = load_torch_checked(path, "training-state file", STATE_FORMAT, require_checksum=False)
    if not isinstance(payload.get("training"), dict):
        raise ValueError(f"{path} is not a complete training-state file (no training state).")
    return payload


def load_training_state(model, path, callbacks=None) -> dict:
    """Restore what ``PeriodicSave(opt_path=...)`` saved into ``model`` and, with ``callbacks``
    (the resumed run's list), their states after ``on_train_begin``. Returns the payload."""
    payload = read_training_state(path)
    model.trainer = Trainer.from_state_dict(model, payload["training"], path)
    if callbacks is not None:
        restore_callback_states(callbacks, payload.get("callbacks"))
    return payload
