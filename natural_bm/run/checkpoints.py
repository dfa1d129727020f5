"""The results folder of a run: the one module that knows its layout.

A folder ``OUT`` holds::

    .lock                     the exclusive OS lock of the run that writes it
    config.json               the config as run (defaults filled in, overrides applied)
    log.csv                   one row per epoch
    checkpoints/              weights_epoch0007.pt and state_epoch0007.pt: what --resume continues from
    pretrain/rbm<i>/checkpoints/, pretrain_rbm<i>.csv   a DBM's greedy pre-training, per RBM
    history.png, samples_epoch0009.png, summary.txt, model.pt, results.json   the finished run
    data_transform.json       data.kind: standardized: the training split's column means and scales
    model.npz, samples.png    a DBN's model file (portable: natural_bm.models.portable) and sample grid

Checkpoints are written at epoch boundaries only (``RunCheckpoint``): a run stopped inside an epoch
(pre-empted) resumes from the last boundary, bit-identically. A checkpoint of the position inside an
epoch would be added in ``RunCheckpoint.on_epoch_end`` (writing) and ``latest_intact_checkpoint``
(reading) alone.
"""

from __future__ import annotations

import csv as csv_module
import json
import os
import shutil
import tarfile
import warnings
from pathlib import Path

import pandas as pd

from natural_bm import load_model
from natural_bm.callbacks import PeriodicSave, load_training_state
from natural_bm.callbacks.callback_list import restore_callback_states
from natural_bm.callbacks.periodic_save import read_training_state
from natural_bm.callbacks.sample_callback import epoch_path
from natural_bm.io import atomic_write, atomic_write_text, first_line, writes_files
from natural_bm.run.config import read_raw_config, resolve_config
from natural_bm.run.overrides import apply_overrides
from natural_bm.run.rules import ConfigError

__all__ = ["CONFIG_NAME", "DBN_MODEL_NAME", "LOCK_NAME", "MODEL_NAME", "PRETRAIN_DIR", "RunCheckpoint",
           "STATUS_COMPLETE", "STATUS_DIVERGED", "STATUS_EARLY", "STATUS_PREEMPTED", "TRANSFORM_NAME", "check_out_path",
           "checkpoint_paths", "clear_for_fresh_start", "finished_results", "is_orphan", "is_unstarted",
           "latest_intact_checkpoint", "migrate_legacy_config", "model_name", "read_run_config",
           "remove_orphans", "remove_outputs_after", "restore_checkpoint", "snapshot", "truncate_log",
           "write_json"]

LOCK_NAME, CONFIG_NAME, LOG_NAME = ".lock", "config.json", "log.csv"
RESULTS_NAME, MODEL_NAME, SUMMARY_NAME, SAMPLES_NAME = "results.json", "model.pt", "summary.txt", "samples.png"
#: the standardisation of data.kind: standardized (natural_bm.run.data.DataTransform), beside the model file
TRANSFORM_NAME = "data_transform.json"
#: a DBN's model file: the portable format, which ``load_model`` reads (``model.save``'s .pt files hold RBMs and DBMs)
DBN_MODEL_NAME = "model.npz"
CHECKPOINT_DIR = "checkpoints"
WEIGHTS_NAME, STATE_NAME = "weights.pt", "state.pt"  # checkpoint templates: weights_epoch0007.pt, state_epoch0007.pt
#: where pre-training keeps its per-epoch checkpoints, as <out>/pretrain/rbm<i>/checkpoints/
PRETRAIN_DIR = "pretrain"
STATUS_COMPLETE, STATUS_EARLY, STATUS_DIVERGED = "complete", "early_stopped", "diverged"
#: a run stopped by a pre-emption signal; it continues with --resume (never written as a finished run)
STATUS_PREEMPTED = "preempted"


def check_out_path(out) -> Path:
    """The results folder as a Path; ConfigError for an empty path, one that is a file or lies under a file."""
    if out is None or str(out).strip() == "":
        raise ConfigError("the results folder (--out) must not be empty.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"the results folder {out} is a file; choose a folder.")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"the results folder {out} lies under {parent}, which is a file; choose a folder.")
    return out


def is_unstarted(out: Path) -> bool:
    """Whether ``out`` holds no run: missing, empty, or only the lock and temporary files of a run killed
    before it wrote its config (a kill in its first milliseconds)."""
    if not out.is_dir():
        return True
    return all(p.name == LOCK_NAME or is_orphan(p) for p in out.iterdir())


def is_orphan(p: Path) -> bool:
    """A temporary file of an atomic write (``.name.XXXX.tmp``) that a kill left behind."""
    return p.is_file() and p.name.startswith(".") and p.name.endswith(".tmp")


def write_json(path: Path, obj: dict) -> None:
    """``obj`` as indented JSON, written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


# ---------------------------------------------------------------------------- config.json


def migrate_legacy_config(raw: dict) -> tuple[dict, list[str]]:
    """A config written before ``natural_bm.run``, in today's spelling, and what was changed.

    Before it, a DBM config's ``training.algorithm`` (default ``pcd``) was silently trained with ``mfpcd``
    unless it was ``pt``; such folders say ``pcd`` (or ``cd``, ``exact``) and are read as ``mfpcd``, what
    they trained with. New configs name a DBM's algorithm and are refused otherwise.
    """
    model, training = raw.get("model"), raw.get("training")
    if not (isinstance(model, dict) and isinstance(training, dict) and model.get("type") == "dbm"):
        return raw, []
    algorithm = training.get("algorithm")
    if algorithm in ("cd", "pcd", "exact"):
        return {**raw, "training": {**training, "algorithm": "mfpcd"}}, [
            f"training.algorithm: {algorithm!r} -> 'mfpcd' (what runs before natural_bm.run trained a DBM with)"]
    return raw, []


def read_run_config(folder: Path, overrides=()) -> dict:
    """The resolved config of results folder ``folder`` (its ``config.json``, legacy spellings migrated),
    with ``overrides`` (``--set KEY=VALUE`` texts) applied.

    Raises:
        FileNotFoundError: no ``config.json`` (not a results folder, or a run killed at its start).
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --resume needs a results folder; to start a run in "
                                f"{folder}, pass its config: natural-bm train CONFIG --resume {folder}.")
    raw, _ = migrate_legacy_config(read_raw_config(path))
    return resolve_config(apply_overrides(raw, overrides))


# ---------------------------------------------------------------------------- checkpoints


def checkpoint_paths(folder: Path, epoch: int) -> tuple[Path, Path]:
    """(weights, training state) of ``epoch`` under ``folder/checkpoints``."""
    return (epoch_path(folder / CHECKPOINT_DIR / WEIGHTS_NAME, epoch, ".pt"),
            epoch_path(folder / CHECKPOINT_DIR / STATE_NAME, epoch, ".pt"))


class RunCheckpoint(PeriodicSave):
    """``PeriodicSave`` of the run's layout that writes only at epoch boundaries.

    An epoch cut short (a pre-emption stops ``fit`` after the current update) gets no checkpoint: the
    previous epoch's stays the newest, and the resumed run repeats the interrupted epoch from its start,
    as the uninterrupted run did. (A checkpoint of the position inside the epoch would be written here.)
    """

    batch_logs_on_device = True  # reads no batch values: costs the update no host round-trip

    def __init__(self, folder: Path, **kwargs) -> None:
        super().__init__(folder / CHECKPOINT_DIR / WEIGHTS_NAME, opt_path=folder / CHECKPOINT_DIR / STATE_NAME,
                         **kwargs)
        self._last_batch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch = batch

    def on_epoch_end(self, epoch, logs=None):
        steps = self.params.get("steps")
        if steps is not None and self._last_batch < steps - 1:
            return  # cut short: not an epoch boundary
        super().on_epoch_end(epoch, logs)


#: callback-state keys of checkpoints written before natural_bm.run, and today's
LEGACY_STATE_KEYS = {"PeriodicSave": "RunCheckpoint"}


def restore_checkpoint(model, folder: Path, epoch: int, callbacks: list, droppable=()) -> tuple[dict, list[str]]:
    """Load the checkpoint of ``epoch`` under ``folder`` into ``model`` and ``callbacks`` (the run's list,
    built as before); returns the training-state payload and the keys of the dropped callback states.
    Checkpoints written before ``natural_bm.run`` (their run-checkpoint state under ``PeriodicSave``) load
    too. ``droppable``: class names of callbacks the resumed run may have switched off (their saved states
    are dropped, ``restore_callback_states``)."""
    weights, state = checkpoint_paths(folder, epoch)
    model.load_weights(weights)
    payload = load_training_state(model, state)  # the trainer; the callbacks' states below, under today's keys
    states = {LEGACY_STATE_KEYS.get(k, k): v for k, v in (payload.get("callbacks") or {}).items()}
    return payload, restore_callback_states(callbacks, states, droppable)


def latest_intact_checkpoint(folder: Path) -> tuple[int | None, dict | None]:
    """(epoch, training-state payload) of the newest checkpoint under ``folder`` whose two files are intact.

    Damaged or half-present newer checkpoints are skipped with a ``RuntimeWarning`` naming the file.
    (None, None) when there is none.
    """
    epochs = set()
    for p in (folder / CHECKPOINT_DIR).glob("*_epoch*.pt"):
        try:
            epochs.add(int(p.stem.split("_epoch")[-1]))
        except ValueError:
            continue
    for epoch in sorted(epochs, reverse=True):
        weights, state = checkpoint_paths(folder, epoch)
        try:
            load_model(weights)
            payload = read_training_state(state)
        except (FileNotFoundError, ValueError) as err:
            warnings.warn(f"skipping checkpoint of epoch {epoch}: {err}", RuntimeWarning, stacklevel=2)
            continue
        return epoch, payload
    return None, None


def model_name(cfg: dict) -> str:
    """The model file of a run of ``cfg`` in its results folder: ``model.pt``, or a DBN's ``model.npz``."""
    return DBN_MODEL_NAME if cfg["model"]["type"] == "dbn" else MODEL_NAME


def finished_results(out: Path, cfg: dict) -> dict | None:
    """The results of a finished run of ``cfg`` (complete or early-stopped, with its model file), else None.
    A complete run whose ``epochs_run`` is short of ``cfg``'s ``training.epochs`` (a resume that raised
    them) is not finished: it continues from its last checkpoint."""
    try:
        results = json.loads((out / RESULTS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or not (out / model_name(cfg)).is_file():
        return None
    if results.get("status") == STATUS_COMPLETE and \
            int(results.get("epochs_run", cfg["training"]["epochs"])) < int(cfg["training"]["epochs"]):
        return None
    return results if results.get("status") in (STATUS_COMPLETE, STATUS_EARLY) else None


# ---------------------------------------------------------------------------- tidying at resume


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files (``.name.XXXX.tmp``) that a killed run left behind."""
    removed = []
    if not writes_files():  # rank 0 of a process group tidies for all
        return removed
    for p in folder.rglob(".*.tmp"):
        if p.is_file():
            p.unlink()
            removed.append(p)
    return removed


def remove_outputs_after(out: Path, epoch: int) -> None:
    """Delete the sample grids of epochs after ``epoch`` (drawn by a run stopped before their checkpoint)."""
    if not writes_files():
        return
    stem, suffix = Path(SAMPLES_NAME).stem, Path(SAMPLES_NAME).suffix
    for p in out.glob(f"{stem}_epoch*{suffix}"):
        try:
            later = int(p.stem.split("_epoch")[-1]) > epoch
        except ValueError:
            continue
        if later:
            p.unlink()


def clear_for_fresh_start(out: Path) -> None:
    """Remove what a run killed before its first checkpoint wrote, keeping config.json, the lock and
    what pre-training has written (its checkpoints and logs, from which it continues)."""
    if not writes_files():
        return
    for p in out.iterdir():
        if p.name in (CONFIG_NAME, LOCK_NAME, PRETRAIN_DIR) or p.name.startswith("pretrain_rbm"):
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def truncate_log(csv: Path, last_epoch: int) -> None:
    """Drop log rows after ``last_epoch`` (written before a crash, not covered by a checkpoint); warn
    when rows up to ``last_epoch`` are missing (an older log restored over a newer checkpoint)."""
    if not csv.is_file():
        return
    fix = "move it away to resume without the earlier log rows"
    raw = csv.read_bytes()
    if not raw.strip():
        raise ValueError(f"{csv} is empty; {fix}.")
    if b"\0" in raw:
        raise ValueError(f"{csv} is not a text CSV file (binary bytes); {fix}.")
    if not raw.endswith(b"\n"):
        raise ValueError(f"{csv} is truncated (its last row is incomplete); {fix}.")
    try:
        df = pd.read_csv(csv)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ValueError(f"{csv} cannot be read as a training log ({first_line(err)}); {fix}.") from None
    if "epoch" not in df.columns:
        raise ValueError(f"{csv} has no 'epoch' column, so it is not a natural_bm training log; {fix}.")
    missing = sorted(set(range(last_epoch + 1)) - set(df["epoch"].tolist()))
    if missing and len(missing) <= last_epoch:  # an empty-of-history log (moved away, restarted) stays quiet
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        warnings.warn(f"{csv} has no rows for epochs {shown}, which the checkpoint of epoch {last_epoch} "
                      "covers (was an older copy of the log restored over the run?); the run continues and "
                      "its log will lack them", RuntimeWarning, stacklevel=2)
    if not (df["epoch"] > last_epoch).any():
        return  # nothing to drop: the file stays byte for byte as it is
    lines = raw.decode("utf-8").splitlines(keepends=True)
    column = next(csv_module.reader([lines[0]])).index("epoch")
    kept = [lines[0]] + [line for line in lines[1:] if int(next(csv_module.reader([line]))[column]) <= last_epoch]
    atomic_write_text(csv, "".join(kept))


# ---------------------------------------------------------------------------- snapshots


def snapshot(out: str | os.PathLike, dest: str | os.PathLike) -> tuple[Path, list[str]]:
    """Pack what ``--resume`` needs of results folder ``out`` into one tar file ``dest`` (written
    atomically), to carry an unfinished run to another machine or commit it between sessions:
    ``config.json``, the logs (``log.csv``, ``pretrain_rbm<i>.csv``), the newest intact checkpoint's
    weights and training state, or, before the first one, the newest checkpoint of every pre-training
    RBM. Unpack it into an empty folder and run ``natural-bm train --resume`` there.

    Returns (``dest``, the packed paths relative to ``out``)."""
    out = Path(out)
    if not (out / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{out} is not a results folder (no config.json); pass the folder "
                                f"`natural-bm train --out` wrote.")
    names = [CONFIG_NAME] + sorted(p.name for p in out.glob("*.csv"))
    epoch, _ = latest_intact_checkpoint(out)
    if epoch is not None:
        names += [str(p.relative_to(out)) for p in checkpoint_paths(out, epoch)]
    else:
        for folder in sorted((out / PRETRAIN_DIR).glob("rbm*")):
            rbm_epoch, _ = latest_intact_checkpoint(folder)
            if rbm_epoch is not None:
                names += [str(p.relative_to(out)) for p in checkpoint_paths(folder, rbm_epoch)]

    def write(tmp: Path) -> None:
        with tarfile.open(tmp, "w") as tar:
            for name in names:
                tar.add(out / name, arcname=name)

    return atomic_write(dest, write), names
