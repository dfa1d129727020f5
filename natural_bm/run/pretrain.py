"""Greedy training from the config's ``pretrain`` section, checkpointed RBM by RBM: a DBM's pre-training, a
DBN's whole training."""

from __future__ import annotations

from pathlib import Path

from natural_bm import DBN
from natural_bm.callbacks import CSVLogger
from natural_bm.run.build import schedulers, warm_start
from natural_bm.run.checkpoints import (
    PRETRAIN_DIR,
    RunCheckpoint,
    latest_intact_checkpoint,
    restore_checkpoint,
    truncate_log,
)
from natural_bm.run.config import rbm_epochs
from natural_bm.run.schedules import schedules_of
from natural_bm.training import SGD, pretrain_dbm, pretrain_dbn

__all__ = ["pretrain_from_config", "pretrain_log_name"]


def pretrain_log_name(layer: int) -> str:
    """The log of RBM ``layer`` (bottom: 0) in the results folder: ``pretrain_rbm<layer>.csv``."""
    return f"pretrain_rbm{layer}.csv"


def pretrain_from_config(model, x, cfg: dict, out: Path, verbose: int, extra_callbacks=()) -> None:
    """Greedy training of the DBM or DBN ``model`` on ``x`` from ``cfg["pretrain"]``; logs to
    ``out/pretrain_rbm<i>.csv``.

    Every RBM is checkpointed after every epoch (the newest one kept, under ``out/pretrain/rbm<i>/``), and
    a resumed run continues each RBM from its newest intact checkpoint: bit-identical to an uninterrupted
    training, as the main phase's resume is. A DBN's bottom RBM from ``model.init_from`` is loaded from
    that file (after the greedy loop's start has set its visible biases from the data) and trained only
    for the epochs a ``pretrain.epochs`` list gives it (``config.rbm_epochs``). ``extra_callbacks()`` (a
    function) adds callbacks to each RBM's fit (the pre-emption stop).
    """
    p = cfg["pretrain"]
    schedules = schedules_of(p["schedule"], "pretrain.schedule")
    is_dbn = isinstance(model, DBN)
    newest: dict[int, int | None] = {}  # each RBM's newest intact checkpoint, found once

    def folder(layer: int) -> Path:
        return out / PRETRAIN_DIR / f"rbm{layer}"

    def callbacks(layer: int) -> list:
        newest[layer] = latest_intact_checkpoint(folder(layer))[0]
        return [CSVLogger(out / pretrain_log_name(layer), append=newest[layer] is not None),
                *schedulers(schedules), RunCheckpoint(folder(layer), keep_last=1),
                *(extra_callbacks() if extra_callbacks else ())]

    def restore(layer: int, rbm, cbs: list) -> int:
        epoch = newest[layer]
        if epoch is None:
            if is_dbn and layer == 0 and cfg["model"]["init_from"] is not None:
                warm_start(model, cfg)  # the bottom RBM as trained elsewhere
                if verbose:
                    print(f"natural-bm: the DBN's bottom RBM is {cfg['model']['init_from']}.")
            return 0
        restore_checkpoint(rbm, folder(layer), epoch, cbs)
        truncate_log(out / pretrain_log_name(layer), epoch)
        if verbose:
            print(f"natural-bm: {'training' if is_dbn else 'pre-training'} RBM {layer} continues after its epoch "
                  f"{epoch}.")
        return epoch + 1

    settings = {"k": p["k"]} | ({"n_chains": p["n_chains"]} if p["algorithm"] == "pcd" else {})
    greedy = pretrain_dbn if is_dbn else pretrain_dbm
    greedy(model, x, epochs=rbm_epochs(cfg), batch_size=cfg["training"]["batch_size"], seed=cfg["seed"],
           optimizer_factory=lambda layer: SGD(p["lr"], p["momentum"], decay=p["decay"], decay_mode=p["decay_mode"]),
           algorithm=p["algorithm"], verbose=verbose, callbacks_factory=callbacks, restore=restore,
           binarize=cfg["data"]["kind"] == "stochastic", l2=p["l2"], max_norm=p["max_norm"], **settings)
