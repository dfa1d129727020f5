"""Shared by the tests of ``natural-bm`` runs: its one-line errors, and a run killed at a chosen epoch."""

from __future__ import annotations

import contextlib

from natural_bm.callbacks import PeriodicSave


def one_error_line(capsys, *needles) -> str:
    """The captured stderr: one ``natural-bm: error:`` line holding every one of ``needles``."""
    err = capsys.readouterr().err
    assert err.startswith("natural-bm: error:") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, err
    return err


@contextlib.contextmanager
def killed_after(monkeypatch, kill_at: tuple[str, int]):
    """Inside the block, a run is killed (KeyboardInterrupt) right after the checkpoint of epoch
    ``kill_at[1]`` of the RBM whose weight path holds ``kill_at[0]`` is written; outside, runs go on."""
    save = PeriodicSave.on_epoch_end

    def killing_save(self, epoch, logs=None):
        save(self, epoch, logs)
        if kill_at[0] in self.weight_path.as_posix() and epoch == kill_at[1]:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(PeriodicSave, "on_epoch_end", killing_save)
    try:
        yield
    finally:
        monkeypatch.setattr(PeriodicSave, "on_epoch_end", save)
