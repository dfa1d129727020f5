"""The ``natural-bm train`` config: one typed definition, and everything derived from it.

Each section is a dataclass (``ModelConfig``, ``DataConfig``, ...) whose fields are the section's keys:
the annotation is the key's type, the default its default, and the field's metadata its rule (the values
it may take, ``natural_bm.run.rules``) and a one-line meaning. From them come the defaults
(``defaults()``), the checks and their messages (``resolve_config``), ``natural-bm train --help``
(``config_help_text``) and the documentation's table of keys (``config_reference_markdown``).

A resolved config is a plain nested dict, as ``config.json`` holds it: every key present, every value
checked and normalised. Keys that depend on each other (an algorithm a DBM cannot use, pre-training of an
RBM, a schedule's values) are checked after the single keys; keys that depend on the data (its columns
against ``model.layer_sizes`` or ``samples.image_shape``, its values against the visible units) are
checked by ``natural_bm.run.data`` once the data is loaded, still before anything is written.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

import natural_bm.callbacks as callbacks_package
from natural_bm.io import first_line
from natural_bm.run import rules as r
from natural_bm.run.rules import ConfigError
from natural_bm.run.schedules import schedules_of
from natural_bm.training.precision import PRECISIONS

__all__ = ["AISConfig", "CONFIG_CALLBACKS", "ConfigError", "DataConfig", "ModelConfig", "OptimizerConfig",
           "PretrainConfig", "RunConfig", "SamplesConfig", "ScheduleConfig", "TrainingConfig", "callback_class",
           "check_device", "defaults", "make_callback", "rbm_epochs", "read_config", "resolve_config",
           "section_classes", "visible_unit_name"]


def setting(default, rule: r.Rule, doc: str):
    """A config key: its default, its rule and its meaning (one line)."""
    meta = {"rule": rule, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    """model: the machine to train."""

    type: str = setting("rbm", r.choice("rbm", "dbm", "dbn"),
                    "rbm (one hidden layer), dbm (a deep Boltzmann machine) or dbn (a deep belief network: RBMs "
                    "trained greedily, bottom first, from the pretrain section)")
    n_hidden: int = setting(500, r.integer(1), "hidden units of an RBM (of a DBM without layer_sizes: one layer)")
    layer_sizes: list[int] | None = setting(None, r.optional(r.int_list(1, min_len=2)),
                                        "a DBM's or a DBN's units per layer, visible first, e.g. [784, 500, 1000]")
    units: list | None = setting(None, r.optional(r.unit_list),
                             "one unit type per layer, e.g. [gaussian, bernoulli]; null: all Bernoulli")
    topology: dict | None = setting(None, r.optional(r.mapping),
                                "a DBM's edges as {layer: [layers joined to it]}; null: a chain")
    init: str = setting("gaussian", r.choice("gaussian", "orthogonal"), "how the starting weights are drawn")
    weight_scale: float = setting(0.01, r.number(0, strict_min=True), "scale of the starting weights")
    init_from: str | None = setting(None, r.optional(r.text),
                                "a model file to start from (its weights and biases only; same architecture); for "
                                "a DBN, the bottom RBM's file (layer_sizes[0] x layer_sizes[1]), reused as it is")


@dataclass
class DataConfig:
    """data: the training, validation and test rows."""

    name: str = setting("mnist", r.choice("mnist", "bars_and_stripes", "files", "digits"),
                    "the data set: MNIST, bars and stripes, your own files, or scikit-learn's 8x8 digits")
    kind: str = setting("auto", r.choice("auto", "probability", "sampled", "threshold", "stochastic", "real",
                                         "standardized"),
                    "grey levels (probability), binarised once (sampled, threshold) or afresh per minibatch "
                    "(stochastic); for Gaussian visible units real values as they are (real) or each column "
                    "standardised with the training split's mean and sd (standardized: digits, files); auto: "
                    "real for Gaussian visible units, else probability (config.json records the kind used)")
    n_train: int = setting(50000, r.integer(1), "MNIST training rows (the rest of the 60,000 validate)")
    n_valid: int = setting(10000, r.integer(0), "MNIST validation rows")
    eval_kind: str = setting("sampled", r.choice("probability", "sampled", "threshold"),
                         "how validation and test rows are binarised when kind is stochastic")
    size: int = setting(3, r.integer(2), "bars and stripes: the side of the square images")
    n_samples: int = setting(1000, r.integer(1), "bars and stripes: training rows (n_samples // 5 validate, test)")
    path: str | None = setting(None, r.optional(r.text), "MNIST: the folder of its files (null: NATURAL_BM_DATA)")
    train: str | None = setting(None, r.optional(r.text), "files: the training matrix, .npy, .npz or .csv")
    valid: str | None = setting(None, r.optional(r.text), "files: the validation matrix (null: valid_fraction)")
    test: str | None = setting(None, r.optional(r.text), "files: the test matrix (null: test_fraction)")
    key: str | None = setting(None, r.optional(r.text), "files: the array's name inside an .npz file")
    valid_fraction: float = setting(0.0, r.number(0, 1, strict_max=True),
                                "files: fraction of the training rows held out to validate, when no valid file")
    test_fraction: float = setting(0.0, r.number(0, 1, strict_max=True),
                               "files: fraction of the training rows held out to test, when no test file")
    labels: bool = setting(False, r.boolean, "train with class labels clamped on the last layer (mnist, digits)")


@dataclass
class TrainingConfig:
    """training: the fit."""

    algorithm: str = setting("auto", r.choice("auto", "cd", "pcd", "exact", "mfpcd", "pt"),
                         "auto (pcd for an RBM, mfpcd for a DBM); cd, pcd, exact (small RBMs) or pt (parallel "
                         "tempering) for an RBM; mfpcd or pt for a DBM")
    k: int = setting(1, r.integer(1), "Gibbs sweeps per update")
    n_chains: int = setting(100, r.integer(1), "persistent chains (pcd, mfpcd, pt)")
    n_temperatures: int = setting(10, r.integer(2), "pt: temperatures of the ladder")
    min_beta: float = setting(0.1, r.number(0, 1, strict_min=True, strict_max=True),
                          "pt: the lowest inverse temperature (a geometric ladder up to 1)")
    adaptive_ladder: bool = setting(False, r.boolean,
                                    "pt: the ladder tunes itself while training, rungs placed for swap rates near "
                                    "swap_target (added where swaps stall); logs swap_rate_min/max, n_temperatures")
    swap_target: float = setting(0.25, r.number(0, 1, strict_min=True, strict_max=True),
                                 "pt with adaptive_ladder: the swap rate the rungs are placed for")
    epochs: int = setting(10, r.integer(1), "passes over the training rows")
    batch_size: int = setting(100, r.integer(1), "rows per update")
    l1: float = setting(0.0, r.number(0), "L1 weight decay")
    l2: float = setting(0.0, r.number(0), "L2 weight decay")
    mf_steps: int = setting(10, r.integer(1), "mfpcd: mean-field updates of the positive phase")
    jit_compile: bool | str = setting("auto", r.choice(True, False, "auto"),
                                  "torch.compile the update: true, false, or auto (on CUDA)")
    cuda_graph: bool = setting(True, r.boolean, "replay the update from a CUDA graph where the run allows")
    precision: str = setting("float32", r.choice(*PRECISIONS),
                             "cd, pcd of a binary RBM: the dtype of the training products (bfloat16: float32 "
                             "accumulation and master weights; bfloat16-emulated: its numerics computed in "
                             "float32; estimators stay in float32/float64)")
    centering: dict | None = setting(None, r.optional(r.centering),
                                 "train the centred machine, e.g. {rate: 0.01, target: data}")
    max_norm: float | None = setting(None, r.optional(r.number(0, strict_min=True)),
                                 "keep each unit's incoming weight vector at L2 norm <= max_norm")
    sparsity: dict | None = setting(None, r.optional(r.sparsity),
                                "hidden sparsity targets, e.g. {target: 0.1, cost: 0.001, damping: 0.9}")
    keep_checkpoints: int | None = setting(3, r.optional(r.integer(1)), "checkpoints kept (the newest); null: all")
    best_checkpoint: str | None = setting("auto", r.optional(r.text),
                                      "also keep the best epoch's checkpoint by this log key; auto: the first "
                                      "the run logs of val_pll, val_ll_exact, val_loss (recorded; none without "
                                      "validation data); null: none")


@dataclass
class PretrainConfig:
    """pretrain: greedy training of one RBM per pair of layers, bottom first: a DBM's pre-training, a DBN's
    whole training."""

    epochs: int | list[int] = setting(0, r.int_or_int_list(0),
                                      "epochs of each RBM: one number, or one per RBM (bottom first); a DBN's "
                                      "bottom RBM from model.init_from trains only by a list's first number")
    algorithm: str = setting("cd", r.choice("cd", "pcd"), "the RBMs' algorithm")
    k: int = setting(1, r.integer(1), "Gibbs sweeps per update")
    n_chains: int = setting(100, r.integer(1), "pcd: persistent chains")
    lr: float = setting(0.05, r.number(0, strict_min=True), "SGD learning rate")
    momentum: float = setting(0.5, r.number(0, 1, strict_max=True), "SGD momentum")
    decay: float = setting(0.0, r.number(0), "learning-rate decay per update")
    decay_mode: str = setting("inverse", r.choice("inverse", "exponential"), "lr / (1 + decay t) or lr / (1 + decay)^t")
    l2: float = setting(0.0, r.number(0), "L2 weight decay")
    max_norm: float | None = setting(None, r.optional(r.number(0, strict_min=True)), "max-norm of each unit's weights")
    schedule: dict | None = setting(None, r.optional(r.mapping), "the RBMs' lr, momentum and k schedules (as schedule)")


@dataclass
class OptimizerConfig:
    """optimizer: how gradients move the parameters."""

    name: str = setting("sgd", r.choice("sgd", "adam"), "sgd (with momentum) or adam")
    lr: float = setting(0.01, r.number(0, strict_min=True), "learning rate")
    momentum: float = setting(0.0, r.number(0, 1, strict_max=True), "sgd: momentum")
    nesterov: bool = setting(False, r.boolean, "sgd: Nesterov momentum")
    decay: float = setting(0.0, r.number(0), "learning-rate decay per update")
    decay_mode: str = setting("inverse", r.choice("inverse", "exponential"), "lr / (1 + decay t) or lr / (1 + decay)^t")
    beta_1: float = setting(0.9, r.number(0, 1, strict_max=True), "adam: first-moment decay")
    beta_2: float = setting(0.999, r.number(0, 1, strict_max=True), "adam: second-moment decay")
    epsilon: float = setting(1e-8, r.number(0, strict_min=True), "adam: epsilon")


@dataclass
class AISConfig:
    """ais: log Z by annealed importance sampling, during and after training."""

    n_runs: int = setting(100, r.integer(2), "annealing runs")
    n_betas: int | None = setting(None, r.optional(r.integer(2)), "inverse temperatures; null: the 14,501 schedule")
    epochs: list[int] | None = setting(None, r.optional(r.int_list(0)),
                                       "epochs (0-based) to run AIS at; null: the last")
    exact: bool | str = setting("auto", r.choice("auto", True, False),
                            "log Z by enumeration: true (beside AIS, where feasible), false (AIS only), or auto: "
                            "exact instead of AIS where the model has at most 2^20 states to enumerate (AIS "
                            "still runs for reverse or importance_samples), AIS otherwise")
    reverse: bool = setting(False, r.boolean, "reverse AIS after training: with forward AIS, a bracket on log Z")
    reverse_gibbs: int = setting(1000, r.integer(0), "Gibbs sweeps before reverse AIS, from the persistent chains")
    parity: int | str = setting("auto", r.choice("auto", 0, 1), "layers annealed: 0 even (v, h2), 1 odd (h1), auto")
    importance_samples: int | None = setting(None, r.optional(r.integer(1)),
                                         "K: also the test log-likelihood with log p*(v) importance-sampled, K draws")
    trajectory: bool | str = setting("auto", r.choice("auto", True, False),
                                 "log Z and the log-likelihoods every epoch by trajectory AIS (TrajectoryAISCallback: "
                                 "logZ_trajectory, train_ll_trajectory, val_ll_trajectory): auto is on for RBMs and "
                                 "DBMs trained with persistent chains (pcd, mfpcd, pt) and records true or false; "
                                 "false turns it off")
    trajectory_reanchor_every: int = setting(10, r.integer(0),
                                             "epochs between the full AIS runs that re-anchor the trajectory (its "
                                             "chains drift low as the model grows modes; logZ_drift logs by how "
                                             "much); 0: never")
    trajectory_betas: int | None = setting(5000, r.optional(r.integer(2)),
                                           "betas of a re-anchoring AIS; null: the 14,501 schedule")


@dataclass
class SamplesConfig:
    """samples: the grid of model samples written at the last epoch."""

    n_chains: int = setting(10, r.integer(1), "rows of the grid (chains)")
    n_samples: int = setting(10, r.integer(1), "columns of the grid (snapshots)")
    plot_every: int = setting(1000, r.integer(1), "Gibbs sweeps between snapshots")
    image_shape: list[int] | None = setting(None, r.optional(r.int_list(1, length=2)),
                                        "a tile's [height, width]; null: the data set's")


@dataclass
class ScheduleConfig:
    """schedule: hyperparameters by epoch: steps [[first epoch, value], ...] or ramps {from, to, every|over}."""

    lr: list | dict | None = setting(None, r.passthrough("null, steps or a ramp; values >= 0"), "learning rate")
    momentum: list | dict | None = setting(None, r.passthrough("null, steps or a ramp; values in [0, 1)"), "momentum")
    k: list | dict | None = setting(None, r.passthrough("null, steps or a ramp; values >= 1"), "Gibbs sweeps")


CONFIG_CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "CyclicLR", "ModelCheckpoint", "OptimizerSpy",
                    "TensorBoard", "RemoteMonitor", "TerminateOnNaN")


@dataclass
class RunConfig:
    """A whole config: the sections, then the keys that stand alone."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    ais: AISConfig = field(default_factory=AISConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    callbacks: list = setting([], r.passthrough("a list of {name: ..., args: {...}}"),
                          f"callbacks by name: {', '.join(CONFIG_CALLBACKS)}, or your own Callback subclass as "
                          f"an import path module:Class (e.g. mypkg.callbacks:WeightNorm)")
    seed: int = setting(0, r.integer(0, 2**63 - 1), "seed of every random number of the run")
    device: str = setting("cpu", r.text, "torch device: cpu, cuda, cuda:1")
    threads: int | None = setting(None, r.optional(r.integer(1)),
                              "CPU threads of torch for the run (torch.set_num_threads); null: torch's default; "
                              "config.json records the number used")


def section_classes() -> dict[str, type]:
    """``{section name: its dataclass}`` in config order."""
    return {f.name: f.default_factory for f in dataclasses.fields(RunConfig) if _is_section(f)}


def _is_section(f: dataclasses.Field) -> bool:
    return f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)


def defaults() -> dict:
    """Every key's default, as a nested dict (a resolved config before ``model`` is given)."""
    return dataclasses.asdict(RunConfig())


def _key_fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def read_config(path: str | os.PathLike) -> dict:
    """Read a JSON or YAML config file and resolve it (``resolve_config``).

    Raises:
        FileNotFoundError: no such file.
        ConfigError: not text, not parseable, not a mapping, or any key or value that ``resolve_config``
            refuses; one line naming the file or the key.
    """
    return resolve_config(read_raw_config(path))


def read_raw_config(path: str | os.PathLike) -> dict:
    """The mapping a JSON or YAML config file holds, unchecked (see ``read_config``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a config is JSON or YAML.") from None
    try:
        raw = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}, line {err.lineno}, column {err.colno}: {err.msg} (not valid JSON).") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: {err.problem or err.context} (not valid YAML).") from None
    except (ValueError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot parse ({first_line(err)}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, got {type(raw).__name__}.")
    return raw


def resolve_config(raw: dict) -> dict:
    """``raw`` over the defaults, every key and value checked; the config as ``config.json`` holds it.

    Raises:
        ConfigError: an unknown key (listing the valid ones), no ``model`` section, a value of the wrong
            type or range, or keys that contradict each other; one line naming the key. Nothing is
            written before this passes.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of sections, got {type(raw).__name__}.")
    if "model" not in raw:
        raise ConfigError("the config has no 'model' section; add one, e.g. model: {type: rbm, n_hidden: 500}.")
    top = _key_fields(RunConfig)
    for name in raw:
        if name not in top:
            raise ConfigError(f"unknown config key {name!r}; valid keys: {sorted(top)}.")
    cfg = {}
    for name, f in top.items():
        if _is_section(f):
            cfg[name] = _resolve_section(name, f.default_factory, raw.get(name, {}))
        else:
            value = raw[name] if name in raw else f.default_factory() if f.default is dataclasses.MISSING \
                else f.default
            cfg[name] = f.metadata["rule"](value, name)
    _check_together(cfg)
    return cfg


def _resolve_section(name: str, cls, given) -> dict:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"config section {name!r} must be a mapping, got {r.describe_value(given)}.")
    fields = _key_fields(cls)
    for sub in given:
        if (name, sub) == ("training", "pretrain_epochs"):
            raise ConfigError("training.pretrain_epochs has moved: write pretrain: {epochs: N} (with the "
                              "RBMs' lr, momentum, k and schedule in the same section).")
        if sub not in fields:
            raise ConfigError(f"unknown key {name}.{sub}; valid keys: {sorted(fields)}.")
    out = dataclasses.asdict(cls())
    for sub, f in fields.items():
        value = copy.deepcopy(given[sub]) if sub in given else out[sub]
        out[sub] = f.metadata["rule"](value, f"{name}.{sub}")
    return out


#: the algorithms each model type trains with (a DBN trains its RBMs with pretrain.algorithm)
ALGORITHMS = {"rbm": ("cd", "pcd", "exact", "pt"), "dbm": ("mfpcd", "pt")}
DEFAULT_ALGORITHM = {"rbm": "pcd", "dbm": "mfpcd"}
#: the largest hidden layer ExactGradient enumerates (2^20 states)
EXACT_MAX_HIDDEN = 20
#: the model types with layer_sizes, trained greedily from the pretrain section (a DBM first, a DBN wholly)
GREEDY_TYPES = ("dbm", "dbn")


def _check_together(cfg: dict) -> None:
    """The checks of keys that depend on each other (``resolve_config``); fills training.algorithm: auto."""
    m, d, t, p = cfg["model"], cfg["data"], cfg["training"], cfg["pretrain"]
    if not isinstance(cfg["callbacks"], list):
        raise ConfigError("config key 'callbacks' must be a list of {name: ..., args: {...}}.")
    for entry in cfg["callbacks"]:
        make_callback(entry)  # validates names and arguments before anything is written
    schedules_of(cfg["schedule"], "schedule")
    schedules_of(p["schedule"], "pretrain.schedule")
    if p["epochs"] and m["type"] not in GREEDY_TYPES:
        raise ConfigError("pretrain.epochs is for DBMs and DBNs (RBMs trained greedily and stacked); an RBM trains "
                          "directly, so remove the pretrain section or set model.type: dbm or dbn.")
    if p["epochs"] and m["init_from"] is not None and m["type"] == "dbm":
        raise ConfigError("model.init_from starts from a trained model's parameters, which pre-training would "
                          "overwrite; remove one of model.init_from and pretrain.epochs.")
    _check_model(m, t)
    n_rbms = len(m["layer_sizes"] or [0, 0]) - 1
    if isinstance(p["epochs"], list) and len(p["epochs"]) != n_rbms:
        what = "DBM pre-trains" if m["type"] == "dbm" else "DBN trains"
        raise ConfigError(f"pretrain.epochs lists {len(p['epochs'])} numbers but the {what} {n_rbms} "
                          f"RBMs (one per pair of layers); give one number per RBM, or one for all.")
    _check_data_keys(d, m)
    if m["type"] == "dbn":
        _check_dbn(cfg)
    check_device(cfg["device"])


def rbm_epochs(cfg: dict) -> list[int]:
    """The epochs of each greedily trained RBM, bottom first (``pretrain.epochs``): a DBN's bottom RBM from
    ``model.init_from`` is reused as it is (0 epochs) unless a list gives it more."""
    m, epochs = cfg["model"], cfg["pretrain"]["epochs"]
    n_rbms = len(m["layer_sizes"] or [0, 0]) - 1
    if isinstance(epochs, list):
        return list(epochs)
    reused = m["type"] == "dbn" and m["init_from"] is not None
    return ([0] if reused else [epochs]) + [epochs] * (n_rbms - 1)


#: the training keys a DBN uses: its RBMs' minibatch size (the rest are for a joint training phase)
DBN_TRAINING_KEYS = ("batch_size",)


def _check_dbn(cfg: dict) -> None:
    """A DBN's keys: a chain of binary layers trained greedily, evaluated by the bound on binary test rows."""
    m, d, a = cfg["model"], cfg["data"], cfg["ais"]
    if m["layer_sizes"] is None or len(m["layer_sizes"]) < 3:
        raise ConfigError("model.type 'dbn' needs model.layer_sizes with at least 3 entries, visible first (e.g. "
                          "[784, 500, 2000]); two layers are an RBM (model.type: rbm).")
    if m["units"] is not None and any(_unit_name(u) != "bernoulli" for u in m["units"]):
        raise ConfigError("model.units: a DBN's layers are binary (Bernoulli) units; remove model.units.")
    if m["topology"] is not None:
        raise ConfigError("model.topology is for DBMs; a DBN is a chain, one RBM per pair of layers.")
    if not any(rbm_epochs(cfg)):
        raise ConfigError("pretrain.epochs: a DBN trains its RBMs greedily for pretrain.epochs each; give at least "
                          "one RBM at least one epoch.")
    for section, cls, kept in (("training", TrainingConfig, DBN_TRAINING_KEYS), ("optimizer", OptimizerConfig, ()),
                               ("schedule", ScheduleConfig, ())):
        default = dataclasses.asdict(cls())
        for key, value in cfg[section].items():
            if key not in kept and value != default[key] and not (section, key) == ("training", "algorithm"):
                raise ConfigError(f"{section}.{key} is for the joint training of an RBM or a DBM; a DBN trains "
                                  f"greedily, one RBM at a time, with the pretrain section's settings (lr, "
                                  f"momentum, k, l2, schedule; training.batch_size is their minibatch size).")
    if cfg["training"]["algorithm"] != "auto":
        raise ConfigError("training.algorithm: a DBN's RBMs train with pretrain.algorithm (cd or pcd); remove "
                          "training.algorithm.")
    if cfg["callbacks"]:
        raise ConfigError("callbacks are given to a joint training phase, which a DBN has not; remove them.")
    if d["labels"]:
        raise ConfigError("data.labels: a DBN is trained without labels here; remove data.labels.")
    if a["epochs"] is not None or a["importance_samples"] is not None:
        key = "ais.epochs" if a["epochs"] is not None else "ais.importance_samples"
        raise ConfigError(f"{key} is for RBMs and DBMs; a DBN's log Z is its top RBM's, estimated once after "
                          f"training, and its test figure is the variational bound.")
    test_kind = d["eval_kind"] if d["kind"] == "stochastic" else d["kind"]
    if d["name"] in ("mnist", "digits") and test_kind not in ("sampled", "threshold"):
        raise ConfigError(f"data.kind: a DBN's test figure (the variational bound) needs binary test rows, but "
                          f"{d['kind']!r} leaves them grey; use data.kind sampled or threshold, or stochastic with "
                          f"data.eval_kind sampled or threshold.")


def _check_model(m: dict, t: dict) -> None:
    n_layers = len(m["layer_sizes"]) if m["type"] in GREEDY_TYPES and m["layer_sizes"] else 2
    if m["type"] == "rbm" and m["layer_sizes"] is not None:
        raise ConfigError("model.layer_sizes is for DBMs and DBNs; an RBM has model.n_hidden (or set model.type: "
                          "dbm or dbn).")
    if m["units"] is not None and len(m["units"]) != n_layers:
        what = "an RBM lists 2 unit types (visible, hidden)" if m["type"] == "rbm" else \
            f"this {m['type'].upper()} lists {n_layers} unit types (one per entry of model.layer_sizes)"
        raise ConfigError(f"model.units of {what}, got {len(m['units'])}.")
    if m["type"] == "dbn":
        return  # its RBMs train with pretrain.algorithm (_check_dbn)
    if t["algorithm"] == "auto":
        t["algorithm"] = DEFAULT_ALGORITHM[m["type"]]
    allowed, what = ALGORITHMS[m["type"]], {"rbm": "an RBM", "dbm": "a DBM"}[m["type"]]
    if t["algorithm"] not in allowed:
        listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
        raise ConfigError(f"training.algorithm {t['algorithm']!r} does not train {what}: {what} trains with "
                          f"{listed} (or auto).")
    if t["algorithm"] == "exact":
        if m["n_hidden"] > EXACT_MAX_HIDDEN:
            raise ConfigError(f"training.algorithm 'exact' enumerates 2^n_hidden hidden states: model.n_hidden "
                              f"must be <= {EXACT_MAX_HIDDEN}, got {m['n_hidden']}.")
        if m["units"] is not None and any(_unit_name(u) != "bernoulli" for u in m["units"]):
            raise ConfigError("training.algorithm 'exact' is for binary (Bernoulli) units; remove model.units "
                              "or choose another algorithm.")


def _unit_name(spec) -> str:
    return (spec.get("type") if isinstance(spec, dict) else spec) or ""


def visible_unit_name(m: dict) -> str:
    """The name of the visible layer's unit type of a model section (``"bernoulli"`` when model.units is null)."""
    return _unit_name(m["units"][0]).lower() if m["units"] else "bernoulli"


def _check_data_keys(d: dict, m: dict) -> None:
    """The data keys against each other and the visible units; fills data.kind: auto (and records a Gaussian
    layer's ``probability`` as ``real``: the values are used as they are)."""
    gaussian = visible_unit_name(m) == "gaussian"
    if d["kind"] == "auto" or (d["kind"] == "probability" and gaussian):
        d["kind"] = "real" if gaussian else "probability"
    if d["kind"] == "real" and not gaussian:
        raise ConfigError("data.kind 'real' (the values as they are, for Gaussian visible units) needs model: "
                          "{units: [gaussian, bernoulli]}; binary visible units take probability, sampled, "
                          "threshold or stochastic.")
    if d["kind"] == "standardized" and d["name"] not in ("digits", "files"):
        raise ConfigError("data.kind 'standardized' (each column standardised for Gaussian visible units) is for "
                          f"data.name 'digits' or 'files', not {d['name']!r}.")
    if d["labels"] and d["name"] not in ("mnist", "digits"):
        raise ConfigError(f"data.labels: {d['name']!r} data has no labels (mnist and digits have).")


def make_callback(entry):
    """A callback from ``{name: ..., args: {...}}``: ``name`` one of ``CONFIG_CALLBACKS``, or the import path
    ``module:Class`` of a ``natural_bm.callbacks.Callback`` subclass (``callback_class``).

    Raises:
        ConfigError: not such a mapping, an unknown name, or arguments the callback refuses.
    """
    if not isinstance(entry, dict) or "name" not in entry or set(entry) - {"name", "args"}:
        raise ConfigError(f"each entry of 'callbacks' must be {{name: ..., args: {{...}}}}, got {entry!r}.")
    cls = callback_class(entry["name"])
    args = entry.get("args") or {}
    if not isinstance(args, dict) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"callbacks: {entry['name']}: args must be a mapping of names, got {args!r}.")
    try:
        return cls(**args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"callbacks: {entry['name']}: {first_line(err)}") from None


def callback_class(name) -> type:
    """The callback class a config's ``callbacks`` entry names: a natural_bm one (``CONFIG_CALLBACKS``) or
    ``module:Class``, imported as Python finds it (the directory natural-bm runs in is searched too, last).

    Raises:
        ConfigError: neither; a module that does not import; no such class in it; not a Callback subclass.
    """
    if name in CONFIG_CALLBACKS:
        return getattr(callbacks_package, name)
    module_name, sep, class_name = name.partition(":") if isinstance(name, str) else ("", "", "")
    if not (sep and module_name and class_name):
        close = difflib.get_close_matches(str(name), CONFIG_CALLBACKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"callbacks: unknown name {name!r}: neither a natural_bm callback (valid names: "
                          f"{list(CONFIG_CALLBACKS)}) nor an importable module:Class (e.g. "
                          f"mypkg.callbacks:WeightNorm).{hint}")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # a user's module beside the config, as `python -m` would find it
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"callbacks: {name!r}: cannot import the module {module_name!r} ({first_line(err)}); put "
                          f"its folder on PYTHONPATH or run natural-bm from the folder that holds it.") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"callbacks: {name!r}: the module {module_name!r} has no {class_name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, callbacks_package.Callback)):
        raise ConfigError(f"callbacks: {name!r} is not a callback class: a config's callback must subclass "
                          f"natural_bm.callbacks.Callback.")
    return cls


def check_device(device: str) -> None:
    """ConfigError naming ``device`` when it is not a torch device, or is CUDA on a machine without one."""
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"device {device!r} is not a torch device ({first_line(err)}).") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine; use 'cpu'.")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: natural_bm runs on 'cpu' or 'cuda'.")
