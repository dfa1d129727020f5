"""A DBM's greedy pre-training from the config's ``pretrain`` section, checkpointed RBM by RBM."""

from __future__ import annotations

from pathlib import Path

from natural_bm.callbacks import CSVLogger
from natural_bm.run.build import schedulers
from natural_bm.run.checkpoints import (
    PRETRAIN_DIR,
    RunCheckpoint,
    latest_intact_checkpoint,
    restore_checkpoint,
    truncate_log,
)
from natural_bm.run.schedules import schedules_of
from natural_bm.training import SGD, pretrain_dbm

__all__ = ["pretrain_from_config"]

def pretrain_from_config(model, x, cfg: dict, out: Path, verbose: int, extra_callbacks=()) -> None:
    """Greedy pre-training of the DBM ``model`` on ``x`` from ``cfg["pretrain"]``; logs to
    ``out/pretrain_rbm<i>.csv``.

    Every RBM is checkpointed after every epoch (the newest one kept, under ``out/pretrain/rbm<i>/``), and
    a resumed run continues each RBM from its newest intact checkpoint: bit-identical to an uninterrupted
    pre-training, as the main phase's resume is. ``extra_callbacks()`` (a function) adds callbacks to each
    RBM's fit (the pre-emption stop).
    """
    p = cfg["pretrain"]
    schedules = schedules_of(p["schedule"], "pretrain.schedule")
    newest: dict[int, int | None] = {}  # each RBM's newest intact checkpoint, found once

    def folder(layer: int) -> Path:
        return out / PRETRAIN_DIR / f"rbm{layer}"

    def callbacks(layer: int) -> list:
        newest[layer] = latest_intact_checkpoint(folder(layer))[0]
        return [CSVLogger(out / f"pretrain_rbm{layer}.csv", append=newest[layer] is not None),
                *schedulers(schedules), RunCheckpoint(folder(layer), keep_last=1),
                *(extra_callbacks() if extra_callbacks else ())]

    def restore(layer: int, rbm, cbs: list) -> int:
        epoch = newest[layer]
        if epoch is None:
            return 0
        restore_checkpoint(rbm, folder(layer), epoch, cbs)
        truncate_log(out / f"pretrain_rbm{layer}.csv", epoch)
        if verbose:
            print(f"natural-bm: pre-training RBM {layer} continues after its epoch {epoch}.")
        return epoch + 1

    settings = {"k": p["k"]} | ({"n_chains": p["n_chains"]} if p["algorithm"] == "pcd" else {})
    pretrain_dbm(model, x, epochs=p["epochs"], batch_size=cfg["training"]["batch_size"], seed=cfg["seed"],
                 optimizer_factory=lambda layer: SGD(p["lr"], p["momentum"], decay=p["decay"],
                                                     decay_mode=p["decay_mode"]),
                 algorithm=p["algorithm"], verbose=verbose, callbacks_factory=callbacks, restore=restore,
                 binarize=cfg["data"]["kind"] == "stochastic", l2=p["l2"], max_norm=p["max_norm"], **settings)
