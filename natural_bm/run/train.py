"""A training run: ``train(cfg, out)`` is what ``natural-bm train`` does.

Everything that can be checked is checked before the results folder is touched: the config, the output path,
the data (against the model: its columns, NaN and inf, its range for the visible units), the model and its
training settings, and every monitored key against the keys the run will log. The folder is then held with an
exclusive OS lock (``<out>/.lock``, released on exit and on a crash) so that two runs can never write into it
together. The folder's layout is ``natural_bm.run.checkpoints``'; the finishing evaluation
``natural_bm.run.finish``'.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from natural_bm import DBN
from natural_bm import distributed as dist
from natural_bm.callbacks.callback_list import apply_restored_states
from natural_bm.io import exclusive_lock
from natural_bm.run.build import RunCallbacks, build_model, warm_start
from natural_bm.run.checkpoints import (
    CONFIG_NAME,
    LOCK_NAME,
    LOG_NAME,
    PRETRAIN_DIR,
    RESULTS_NAME,
    STATUS_PREEMPTED,
    TRANSFORM_NAME,
    check_out_path,
    clear_for_fresh_start,
    finished_results,
    is_unstarted,
    latest_intact_checkpoint,
    migrate_legacy_config,
    read_run_config,
    remove_orphans,
    remove_outputs_after,
    restore_checkpoint,
    truncate_log,
    write_json,
)
from natural_bm.run.config import resolve_config
from natural_bm.run.data import (
    DataTransform,
    check_data_fits_model,
    evaluation_transform,
    load_labels,
    load_splits,
    warn_if_unscaled,
)
from natural_bm.run.dbn import finish_dbn
from natural_bm.run.estimates import LogZPlan, log_z_plan
from natural_bm.run.finish import finish
from natural_bm.run.monitoring import check_monitored_keys, resolve_best_checkpoint
from natural_bm.run.overrides import config_changes, refused_on_resume
from natural_bm.run.preemption import Preemption
from natural_bm.run.pretrain import pretrain_from_config
from natural_bm.run.rules import ConfigError
from natural_bm.training.fit import resolve_verbose

__all__ = ["train"]


@dataclass
class Prepared:
    """What a run needs, made and checked before anything is written."""

    model: object
    splits: tuple  # (train, valid, test)
    image_shape: tuple
    labels: tuple | None
    started: float  # time.time() at the start of this session
    plan: LogZPlan  # how log Z is estimated
    transform: DataTransform | None  # data.kind standardized: the training split's
    notes: list  # what the run chose, said at its start (verbose)


def _prepare(cfg: dict, resume: bool) -> Prepared:
    """Load the data, build the model and check the two against each other (nothing written); fills the
    config's choices that depend on them (``training.best_checkpoint: auto``)."""
    started = time.time()
    data = load_splits(cfg)
    x, valid, test, shape = data.train, data.valid, data.test, data.image_shape
    image_shape = tuple(cfg["samples"]["image_shape"] or shape)
    if math.prod(image_shape) != x.shape[1]:
        raise ConfigError(f"samples.image_shape {list(image_shape)} covers {math.prod(image_shape)} pixels but the "
                          f"data has {x.shape[1]} columns.")
    model = build_model(cfg, x.shape[1])
    check_data_fits_model(model, cfg, {"training": x, "validation": valid, "test": test})
    if not resume:
        warm_start(model, cfg)  # checks model.init_from before anything is written
    labels = load_labels(cfg)
    if labels is not None:
        try:
            model.label_layer()
        except ValueError as err:
            raise ConfigError(f"data.labels: {err}") from None
    plan = log_z_plan(cfg, model.top if isinstance(model, DBN) else model)
    notes = [plan.describe(cfg)]
    if cfg["ais"]["trajectory"] == "auto":  # a fresh run records its choice; a run from before the key: off
        persistent = not isinstance(model, DBN) and model.trainer.algorithm.persistent_rows() is not None
        cfg["ais"]["trajectory"] = bool(persistent and not resume)
        if cfg["ais"]["trajectory"]:
            notes.append("trajectory AIS logs log Z and the log-likelihoods every epoch (ais.trajectory: false "
                         "turns it off)")
    if not isinstance(model, DBN):  # (a DBN has no joint phase: its RBMs keep their newest checkpoint)
        check_monitored_keys(cfg, model, valid is not None, plan, check_best=not resume)
        if cfg["training"]["best_checkpoint"] == "auto":
            cfg["training"]["best_checkpoint"], note = resolve_best_checkpoint(cfg, model, valid is not None, plan)
            notes.append(note)
        warn_if_unscaled(model, x)  # (the last check: a refused config does not warn first)
    return Prepared(model, (x, valid, test), image_shape, labels, started, plan, data.transform, notes)


def train(cfg: dict, out: str | os.PathLike, resume: bool = False, verbose: int | str = "auto",
          preemption: Preemption | None = None) -> dict:
    """Run (or resume) the resolved config ``cfg`` into the results folder ``out``; returns the results
    dict (also in ``results.json``).

    Args:
        cfg: a resolved config (``resolve_config``, ``read_config``).
        out: the results folder; a fresh run needs it missing or empty.
        resume: continue the run in ``out`` from its newest intact checkpoint (damaged ones are skipped
            with a warning; orphaned temporary files are removed). With no checkpoint it starts the run
            again from the saved config; a folder with no config at all (a run killed at its start: only
            the lock) starts ``cfg``. ``cfg`` may differ from the folder's ``config.json`` only in what a
            resumed run may change (``overrides.RESUME_MAY_CHANGE``: more epochs, the finishing AIS and
            samples); the change is recorded there. Resuming a finished run finishes whatever is missing
            (model file, final AIS, samples, summary, results) and never rewrites a complete ``results.json``.
        verbose: 0, 1 (progress bars), 2 (a line per epoch) or ``"auto"``.
        preemption: an active ``Preemption``: its signals stop training at the next update
            (``results["status"] == "preempted"``; continue with ``resume=True``).

    ``cfg["threads"]`` is applied for the run (torch's threads are put back after) and ``config.json``
    records the number used, as it records the key ``training.best_checkpoint: auto`` chose; ``cfg``
    itself is not changed.

    Returns:
        The results: ``status`` ``"complete"``, ``"early_stopped"`` (with ``stop_reason``), ``"diverged"``
        (then ``model.pt`` is not written and the last finite checkpoint stays the one to resume from) or
        ``"preempted"``.
    """
    out, verbose = check_out_path(out), resolve_verbose(verbose)
    cfg = copy.deepcopy(cfg)  # (filled in below: the threads used, the best checkpoint's key)
    threads_before = torch.get_num_threads()
    if cfg["threads"] is not None:
        torch.set_num_threads(cfg["threads"])
    cfg["threads"] = torch.get_num_threads()
    try:
        return _train(cfg, out, resume, verbose, preemption)
    finally:
        torch.set_num_threads(threads_before)


def _train(cfg: dict, out: Path, resume: bool, verbose: int, preemption) -> dict:
    prepared = _prepare(cfg, resume)
    if resume and (out / CONFIG_NAME).is_file():
        _check_resume_config(cfg, out)
    elif resume and not is_unstarted(out):
        raise FileNotFoundError(f"{out / CONFIG_NAME} not found: {out} holds files but no run; choose an empty "
                                f"folder, or resume the results folder that natural-bm train wrote.")
    elif resume and verbose:
        print(f"natural-bm: {out} holds no run yet (none, or one killed at its start); starting it.")
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out / LOCK_NAME, what=f"results folder {out}"):
        return _train_locked(cfg, out, resume and (out / CONFIG_NAME).is_file(), verbose,
                             prepared, preemption)


def _check_resume_config(cfg: dict, out: Path) -> None:
    """ConfigError when ``cfg`` changes what a resumed run of ``out`` may not change."""
    refused = refused_on_resume(config_changes(read_run_config(out), _as_saved(cfg)))
    if refused:
        raise ConfigError(f"resuming {out} with a changed config ({'; '.join(refused)}): a resumed run keeps its "
                          f"settings except training.epochs, ais.*, samples.* and threads; start a new run (--out), "
                          f"or edit {out / CONFIG_NAME} to change them knowingly (--resume then warns).")


def _as_saved(cfg: dict) -> dict:
    """``cfg`` as ``config.json`` holds it (lists, not tuples): what checkpoints keep."""
    return json.loads(json.dumps(cfg))


def _open_folder(cfg: dict, out: Path, resume: bool, verbose: int, transform: DataTransform | None):
    """Start or reopen the results folder: (checkpoint epoch, its payload, the results if already finished).
    A resumed run's changed config (a --set) is recorded in ``config.json`` once its checkpoint has loaded
    (``_record_config``), so a resume that fails leaves the folder's config as it was."""
    if not resume:
        if not is_unstarted(out):
            raise FileExistsError(f"results folder {out} is not empty; choose another or pass --resume.")
        remove_orphans(out)
        dist.barrier()  # every rank has looked before rank 0 writes
        write_json(out / CONFIG_NAME, cfg)
        if transform is not None:
            write_json(out / TRANSFORM_NAME, transform.to_dict())
        return None, None, None
    _check_transform(out, transform)
    done = finished_results(out, cfg)
    if done is not None:
        if verbose:
            print(f"natural-bm: {out} holds a finished run; nothing to resume.")
        return None, None, done
    remove_orphans(out)
    checkpoint, payload = latest_intact_checkpoint(out)
    old = (payload or {}).get("run_config")
    # hand edits of config.json since the checkpoint (what this resume's --set changes is not one: it is
    # recorded once the checkpoint has loaded); threads may change; a run from before ais.trajectory
    # records it as off
    folder_config = _as_saved(read_run_config(out))
    changed = [line for line in config_changes(None if old is None else _resolved(migrate_legacy_config(old)[0]),
                                               folder_config) if not line.startswith(("threads:", "ais.trajectory"))]
    if changed:
        warnings.warn(f"{out / CONFIG_NAME} was edited since the checkpoint of epoch {checkpoint} was written "
                      f"({'; '.join(changed)}); resuming with the edited config. Restore the old values to "
                      f"continue the run as it started.", RuntimeWarning, stacklevel=3)
    if checkpoint is None:
        if cfg["model"]["type"] == "dbn":  # it has no joint phase: its checkpoints are its RBMs'
            if verbose:
                print(f"natural-bm: the DBN's greedy training continues from {out / PRETRAIN_DIR}.")
        else:
            where = (f"the run continues its pre-training from {out / PRETRAIN_DIR}" if (out / PRETRAIN_DIR).is_dir()
                     else "starting the run again from its saved config")
            warnings.warn(f"no intact checkpoint in {out / 'checkpoints'}: {where}.", RuntimeWarning, stacklevel=3)
        clear_for_fresh_start(out)
        _record_config(cfg, out)
    return checkpoint, payload, None


def _record_config(cfg: dict, out: Path) -> None:
    """Write what a resume's --set changed (checked by ``_check_resume_config``) into ``config.json``."""
    if config_changes(read_run_config(out), _as_saved(cfg)):
        write_json(out / CONFIG_NAME, cfg)


def _resolved(raw: dict) -> dict:
    """A checkpoint's config in today's spelling (resolved), or as it is where today's checks refuse it."""
    try:
        return resolve_config(raw)
    except ConfigError:
        return raw


def _check_transform(out: Path, transform: DataTransform | None) -> None:
    """A resumed run's standardisation must be the one it started with (``data_transform.json``)."""
    if transform is None:
        return
    try:
        saved = evaluation_transform(out)
    except ValueError:
        saved = None
    if saved is None:
        write_json(out / TRANSFORM_NAME, transform.to_dict())  # (lost, or a run killed before writing it)
    elif saved != transform:
        raise ConfigError(f"data.train: its columns' means and standard deviations differ from those the run "
                          f"started with ({out / TRANSFORM_NAME}): the training file changed; restore it, or start "
                          f"a new run (--out).")


def _start(cfg: dict, out: Path, prepared: Prepared, resumed: bool, verbose: int, preemption) -> None:
    """The start of a run with no checkpoint: warm start or data-dependent initialisation, pre-training."""
    model, x = prepared.model, prepared.splits[0]
    if isinstance(model, DBN):  # its bottom RBM's init_from is loaded by the greedy training
        pretrain_from_config(model, x, cfg, out, verbose,
                             extra_callbacks=(lambda: [preemption.callback()]) if preemption is not None else None)
        return
    if resumed:
        warm_start(model, cfg)  # a resume that starts the run again
    if cfg["model"]["init_from"] is None and model.supports_init_from_data:
        model.init_from_data(x)
    if cfg["model"]["type"] == "dbm" and cfg["pretrain"]["epochs"]:
        extra = (lambda: [preemption.callback()]) if preemption is not None else None
        pretrain_from_config(model, x, cfg, out, verbose, extra_callbacks=extra)


def _train_locked(cfg: dict, out: Path, resume: bool, verbose: int, prepared: Prepared, preemption) -> dict:
    checkpoint, payload, done = _open_folder(cfg, out, resume, verbose, prepared.transform)
    if done is not None:
        return done
    if verbose and dist.rank() == 0:
        for note in prepared.notes:
            print(f"natural-bm: {note}.")
    model = prepared.model
    if checkpoint is None:
        _start(cfg, out, prepared, resume, verbose, preemption)
        if preemption is not None and preemption.requested:
            return _preempted(out, preemption, None)
    if isinstance(model, DBN):
        return finish_dbn(cfg, out, model, prepared.splits, prepared.plan, prepared.started, resume, verbose)
    extra = (preemption.callback(),) if preemption is not None else ()
    callbacks = RunCallbacks(cfg, out, model, prepared.image_shape, checkpoint is not None, _as_saved(cfg),
                             prepared.plan, extra)
    final_epoch = _resume_or_fit(cfg, out, model, prepared, callbacks, checkpoint, payload, verbose)
    if preemption is not None and preemption.requested:
        return _preempted(out, preemption, latest_intact_checkpoint(out)[0])
    return finish(cfg, out, model, prepared.splits, final_epoch, callbacks, prepared.labels)


def _resume_or_fit(cfg, out: Path, model, prepared: Prepared, callbacks: RunCallbacks, checkpoint, payload,
                   verbose: int) -> int:
    """Restore the checkpoint (if any) and train to the last epoch; returns the last epoch trained."""
    t = cfg["training"]
    last_epoch, initial_epoch = t["epochs"] - 1, 0
    if checkpoint is not None:
        # (callbacks a resume may switch off: ais.trajectory; their saved states are dropped)
        _, dropped = restore_checkpoint(model, out, checkpoint, callbacks.all, droppable=callbacks.switchable)
        if dropped and verbose and dist.rank() == 0:
            print(f"natural-bm: {', '.join(dropped)} switched off from epoch {checkpoint + 1} (its state in the "
                  f"checkpoint is dropped).")
        _record_config(cfg, out)
        truncate_log(out / LOG_NAME, checkpoint)
        remove_outputs_after(out, checkpoint)
        initial_epoch = checkpoint + 1
        if checkpoint >= last_epoch or payload.get("stop_reason"):
            model.trainer.stop_reason = payload.get("stop_reason")  # training had ended; the finish is missing
            apply_restored_states(callbacks.all, model)  # no fit runs, so no on_train_begin
            callbacks.plot.plot()  # nor on_train_end, which draws history.png; the log was truncated
            return checkpoint
    x, valid, _ = prepared.splits
    labels = prepared.labels
    y, validation = (None, valid) if labels is None else (labels[0], None if valid is None else (valid, labels[1]))
    history = model.fit(x, batch_size=t["batch_size"], epochs=t["epochs"], validation_data=validation,
                        callbacks=callbacks.all, verbose=verbose, initial_epoch=initial_epoch, seed=cfg["seed"],
                        binarize=cfg["data"]["kind"] == "stochastic", y=y)
    return history.epoch[-1] if history.epoch else initial_epoch - 1


def _preempted(out: Path, preemption: Preemption, checkpoint: int | None) -> dict:
    """The results of a pre-empted run (written to ``results.json``; ``--resume`` continues it)."""
    results = {"status": STATUS_PREEMPTED, "stop_reason": preemption.reason, "resume_from_epoch": checkpoint}
    write_json(out / RESULTS_NAME, results)
    return results
