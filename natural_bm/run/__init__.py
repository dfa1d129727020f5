"""Config-driven training runs: what ``natural-bm train`` does.

A config (JSON or YAML) trains an RBM, a DBM or a DBN (``model.type``). It has the sections ``model``,
``data``, ``training``, ``pretrain``, ``optimizer``, ``ais``, ``samples`` and ``schedule``, and the keys
``callbacks``, ``seed`` and ``device``; every key is optional except the ``model`` section. Each key's type,
default, allowed values and meaning are defined once, in ``natural_bm.run.config``;
``config_reference_markdown()`` lists them all, and ``natural-bm train --help`` prints them.

The modules, by job: ``config`` (the definition, reading and checking), ``rules`` (what a value may be),
``schedules`` (lr, momentum and k by epoch), ``overrides`` (``--set KEY=VALUE``, config differences),
``reference`` (the keys in words), ``data`` (the splits, and the data checked against the model),
``build`` (model, optimiser, algorithm, callbacks), ``checkpoints`` (the results folder's layout: lock,
checkpoints, snapshots, log truncation), ``pretrain`` (greedy training of RBMs: a DBM's pre-training, a DBN's
whole training), ``preemption`` (scheduler signals), ``train`` (the run), ``finish`` (model file, evaluation
report, results), ``dbn`` (a DBN's finish: its top RBM's log Z and the variational bound) and ``provenance``
(the command, commit and wall time a DBN's results record).

The results folder gets ``config.json`` (the config as run, defaults filled in), ``log.csv``,
``history.png``, ``summary.txt``, sample grids, ``checkpoints/`` (weights and training state after
every epoch, which is what ``--resume`` continues from), ``model.pt`` and ``results.json``; a DBN's folder holds
``pretrain/`` (its RBMs' checkpoints), ``model.npz`` (the portable format) and ``samples.png`` instead.
"""

from natural_bm.run.build import PLOT_INTERVAL_S, build_model, warm_start
from natural_bm.run.checkpoints import (
    DBN_MODEL_NAME,
    MODEL_NAME,
    STATUS_COMPLETE,
    STATUS_DIVERGED,
    STATUS_EARLY,
    STATUS_PREEMPTED,
    TRANSFORM_NAME,
    check_out_path,
    model_name,
    read_run_config,
    snapshot,
)
from natural_bm.run.config import (
    RunConfig,
    check_device,
    defaults,
    make_callback,
    read_config,
    read_raw_config,
    resolve_config,
)
from natural_bm.run.data import (
    DataTransform,
    evaluation_data,
    evaluation_transform,
    load_data,
    load_labels,
    load_splits,
    run_file_rows,
)
from natural_bm.run.overrides import apply_overrides, config_changes
from natural_bm.run.preemption import EXIT_PREEMPTED, Preempted, Preemption
from natural_bm.run.pretrain import pretrain_from_config
from natural_bm.run.reference import config_help_text, config_reference_markdown
from natural_bm.run.rules import ConfigError
from natural_bm.run.schedules import steps_of
from natural_bm.run.train import train

__all__ = [
    "DBN_MODEL_NAME",
    "EXIT_PREEMPTED",
    "MODEL_NAME",
    "PLOT_INTERVAL_S",
    "STATUS_COMPLETE",
    "STATUS_DIVERGED",
    "STATUS_EARLY",
    "STATUS_PREEMPTED",
    "TRANSFORM_NAME",
    "ConfigError",
    "DataTransform",
    "Preempted",
    "Preemption",
    "RunConfig",
    "apply_overrides",
    "build_model",
    "check_device",
    "check_out_path",
    "config_changes",
    "config_help_text",
    "config_reference_markdown",
    "defaults",
    "evaluation_data",
    "evaluation_transform",
    "load_data",
    "load_labels",
    "load_splits",
    "make_callback",
    "model_name",
    "pretrain_from_config",
    "read_config",
    "read_raw_config",
    "read_run_config",
    "resolve_config",
    "run_file_rows",
    "snapshot",
    "steps_of",
    "train",
    "warm_start",
]
