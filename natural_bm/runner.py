"""Config-driven training runs: what ``natural-bm train`` does.

A config (JSON or YAML) has these sections; every key is optional except
``model``::

    model:     {type: rbm, n_hidden: 500}              # or {type: dbm, layer_sizes: [784, 500, 1000], topology: ...}
               # units: one unit type per layer, e.g. [gaussian, bernoulli] or [{type: gaussian, sigma: 0.5}, ...]
               # init_from: path/model.pt starts from that trained model's weights and biases (same class and
               #     architecture; not its optimiser, chains or offsets): a longer run under new settings
    data:      {name: mnist, kind: probability, n_train: 50000, n_valid: 10000, eval_kind: sampled}
               # kind: probability, sampled (once), threshold, or stochastic (grey levels binarised afresh
               # for every training minibatch from the run's seed; validation and test use eval_kind)
               # or {name: digits, kind: standardized}: scikit-learn's 8x8 digits, 1197/300/300 rows, real
               #     values (columns standardised on the training rows) for Gaussian units, or the MNIST kinds
               # or {name: bars_and_stripes, size: 3, n_samples: 1000}: training rows, and
               # n_samples // 5 validation and test rows drawn independently (seeds seed, +1, +2)
               # or {name: files, train: x.npy, valid: v.npy, test: t.csv, key: null (an .npz array),
               #     valid_fraction: 0.1, test_fraction: 0.1, kind: sampled}: .npy/.npz/.csv matrices in
               #     [0, 1]; a split without its own file is a seeded fraction of the training rows
               # labels: true (mnist, digits) trains with class labels clamped on the model's last
               #     layer (softmax units, e.g. layer_sizes: [784, 500, 10], units: [bernoulli,
               #     bernoulli, softmax]); logs val_accuracy, results get test_accuracy
    training:  {algorithm: pcd, k: 1, n_chains: 100, epochs: 10, batch_size: 100, l1: 0.0, l2: 0.0,
                # algorithm: cd, pcd, exact, mfpcd (DBMs) or pt (parallel tempering: n_temperatures: 10,
                # min_beta: 0.1, a geometric ladder; swap rates logged as swap_rate_<k>)
                mf_steps: 10, jit_compile: auto, cuda_graph: true,   # see BoltzmannMachine.compile
                centering: null,   # or {rate: 0.01, target: data}: train the centred machine (Melchior et al.
                                   # 2016; natural_bm.training.centering), any depth and algorithm
                max_norm: null,    # or 8: each unit's incoming weight vector kept at L2 norm <= 8
                sparsity: null,    # or {target: 0.1 (or {1: 0.2, 2: 0.1}), cost: 0.001, damping: 0.9}:
                                   # hidden sparsity targets (natural_bm.training.sparsity)
                keep_checkpoints: 3, best_checkpoint: val_pll}   # checkpoints kept: the newest 3 and the
               # best epoch by that log key (keep_checkpoints: null keeps all; best_checkpoint: null none)
    pretrain:  {epochs: 0, algorithm: cd, k: 1, n_chains: 100, lr: 0.05, momentum: 0.5, decay: 0.0,
                decay_mode: inverse, l2: 0.0, max_norm: null, schedule: {momentum: ..., k: ..., lr: ...}}
               # DBMs: greedy RBMs first (pretrain_dbm); epochs: one number, or one per RBM (bottom
               # first); each RBM's log goes to pretrain_rbm<i>.csv; data.kind stochastic applies too
    optimizer: {name: sgd, lr: 0.01, momentum: 0.0, nesterov: false, decay: 0.0,   # or adam: lr, beta_1, ...
                decay_mode: inverse}   # per update: lr / (1 + decay t), or exponential: lr / (1 + decay)^t
    ais:       {n_runs: 100, n_betas: null, epochs: [], exact: false,              # at the last epoch by default
                reverse: false, reverse_gibbs: 1000,  # reverse AIS after training: a bracket when they agree
                parity: auto,   # layers annealed: 0 even (v, h2), 1 odd (h1), auto (v of an RBM, h1 of a DBM)
                importance_samples: null}   # K: also test_ll_importance, log p*(v) importance-sampled with
               # K draws (DBMs: tighter than the mean-field bound; log_likelihood(importance_samples=K))
    samples:   {n_chains: 10, n_samples: 10, plot_every: 1000, image_shape: [28, 28]}
    schedule:  {lr: [[0, 0.01], [50, 0.001]], momentum: [[0, 0.5], [5, 0.9]],  # [first epoch, value] steps
                k: {from: 1, to: 25, every: 4}}   # or a ramp: +1 (towards `to`) every `every` epochs,
               # or {from: 0.5, to: 0.9, over: 8, shape: geometric}: linear or geometric over `over` epochs
    callbacks: [{name: EarlyStopping, args: {monitor: val_pll, patience: 5}}, {name: OptimizerSpy}]
    seed: 0
    device: cpu

The results folder gets ``config.json`` (the config as run, defaults filled
in), ``log.csv``, ``history.png``, ``summary.txt``, sample grids,
``checkpoints/`` (weights and training state after every epoch, which is what
``--resume`` continues from), ``model.pt`` and ``results.json``.
"""

from __future__ import annotations

import copy
import csv as csv_module
import json
import math
import os
from pathlib import Path

import torch

from natural_bm import distributed as dist
from natural_bm.config_schema import ConfigError, check_config, check_config_value
from natural_bm.io import atomic_write_text, first_line

__all__ = ["ConfigError", "DEFAULTS", "build_model", "load_data", "read_config", "resolve_config", "train"]

DEFAULTS: dict = {
    "model": {"type": "rbm", "n_hidden": 500, "layer_sizes": None, "units": None, "topology": None, "init": "gaussian",
              "weight_scale": 0.01, "init_from": None},
    "data": {"name": "mnist", "kind": "probability", "n_train": 50000, "n_valid": 10000, "eval_kind": "sampled",
             "size": 3, "n_samples": 1000, "path": None, "train": None, "valid": None, "test": None, "key": None,
             "valid_fraction": 0.0, "test_fraction": 0.0, "labels": False},
    "training": {"algorithm": "pcd", "k": 1, "n_chains": 100, "n_temperatures": 10, "min_beta": 0.1,
                 "epochs": 10, "batch_size": 100, "l1": 0.0,
                 "l2": 0.0, "mf_steps": 10, "jit_compile": "auto", "cuda_graph": True, "centering": None,
                 "max_norm": None, "sparsity": None, "keep_checkpoints": 3,
                 "best_checkpoint": "val_pll"},
    "pretrain": {"epochs": 0, "algorithm": "cd", "k": 1, "n_chains": 100, "lr": 0.05, "momentum": 0.5,
                 "decay": 0.0, "decay_mode": "inverse", "l2": 0.0, "max_norm": None, "schedule": None},
    "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.0, "nesterov": False, "decay": 0.0,
                  "decay_mode": "inverse", "beta_1": 0.9,
                  "beta_2": 0.999, "epsilon": 1e-8},
    "ais": {"n_runs": 100, "n_betas": None, "epochs": None, "exact": False, "reverse": False,
            "reverse_gibbs": 1000, "parity": "auto", "importance_samples": None},
    "samples": {"n_chains": 10, "n_samples": 10, "plot_every": 1000, "image_shape": None},
    "schedule": {"lr": None, "momentum": None, "k": None},
    "callbacks": [],
    "seed": 0,
    "device": "cpu",
}


def read_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a config is JSON or YAML.") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as err:
        raise ConfigError(f"{path}: cannot parse ({first_line(err)}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, got {type(raw).__name__}.")
    return resolve_config(raw)


def resolve_config(raw: dict) -> dict:
    """Merge ``raw`` over the defaults and check every key (``natural_bm.config_schema``).

    Unknown keys raise ConfigError listing the valid ones; so do a missing
    ``model`` section and any value of the wrong type or range. Nothing is
    written before this passes.
    """
    cfg = copy.deepcopy(DEFAULTS)
    if "model" not in raw:
        raise ConfigError("the config has no 'model' section; add one, e.g. model: {type: rbm, n_hidden: 500}.")
    for key, value in raw.items():
        if key not in cfg:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {sorted(cfg)}.")
        if isinstance(cfg[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {key!r} must be a mapping.")
            for sub, v in value.items():
                if (key, sub) == ("training", "pretrain_epochs"):
                    raise ConfigError("training.pretrain_epochs has moved: write pretrain: {epochs: N} (with the "
                                      "RBMs' lr, momentum, k and schedule in the same section).")
                if sub not in cfg[key]:
                    raise ConfigError(f"unknown key {key}.{sub}; valid keys: {sorted(cfg[key])}.")
                cfg[key][sub] = v
        else:
            cfg[key] = value
    cfg = check_config(cfg)
    if not isinstance(cfg["callbacks"], list):
        raise ConfigError("config key 'callbacks' must be a list of {name: ..., args: {...}}.")
    for entry in cfg["callbacks"]:
        make_callback(entry)  # validates names and arguments before anything is written
    for key in ("lr", "momentum", "k"):
        steps_of(cfg["schedule"][key], f"schedule.{key}")
    _pretrain_schedules(cfg["pretrain"])
    if cfg["pretrain"]["epochs"] and cfg["model"]["type"] != "dbm":
        raise ConfigError("pretrain.epochs is for DBMs (greedy RBMs stacked into a DBM); an RBM trains directly, "
                          "so remove the pretrain section or set model.type: dbm.")
    if cfg["pretrain"]["epochs"] and cfg["model"]["init_from"] is not None:
        raise ConfigError("model.init_from starts from a trained model's parameters, which pre-training would "
                          "overwrite; remove one of model.init_from and pretrain.epochs.")
    check_device(cfg["device"])
    return cfg


def _pretrain_schedules(p: dict) -> dict:
    """pretrain.schedule as {key: schedule function or None} for lr, momentum and k (ConfigError if bad)."""
    spec = p["schedule"] or {}
    unknown = set(spec) - {"lr", "momentum", "k"}
    if unknown:
        raise ConfigError(f"unknown key pretrain.schedule.{sorted(unknown)[0]}; valid keys: ['k', 'lr', 'momentum'].")
    return {key: steps_of(spec.get(key), f"pretrain.schedule.{key}") for key in ("lr", "momentum", "k")}


CONFIG_CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "CyclicLR", "ModelCheckpoint", "OptimizerSpy",
                    "TensorBoard", "RemoteMonitor", "TerminateOnNaN")


def make_callback(entry):
    """A callback from ``{name: <class in CONFIG_CALLBACKS>, args: {...}}``."""
    import natural_bm.callbacks as cbs

    if not isinstance(entry, dict) or "name" not in entry or set(entry) - {"name", "args"}:
        raise ConfigError(f"each entry of 'callbacks' must be {{name: ..., args: {{...}}}}, got {entry!r}.")
    if entry["name"] not in CONFIG_CALLBACKS:
        raise ConfigError(f"callbacks: unknown name {entry['name']!r}; valid names: {list(CONFIG_CALLBACKS)}.")
    args = entry.get("args") or {}
    if not isinstance(args, dict):
        raise ConfigError(f"callbacks: {entry['name']}: args must be a mapping, got {args!r}.")
    try:
        return getattr(cbs, entry["name"])(**args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"callbacks: {entry['name']}: {err}") from None


def steps_of(spec, where: str):
    """A schedule as a function of the epoch (or None): piecewise-constant steps
    ``[[first epoch, value], ...]``; a stepped ramp ``{from: a, to: b, every: n}`` that moves
    one unit from ``a`` towards ``b`` every ``n`` epochs; or a continuous ramp
    ``{from: a, to: b, over: n, shape: linear|geometric}`` from ``a`` at epoch 0 to ``b`` at
    epoch ``n`` (and after), linear or geometric (a (b/a)^(e/n); both ends > 0)."""
    if spec is None:
        return None
    if isinstance(spec, dict) and "over" in spec:
        return _continuous_ramp(spec, where)
    if isinstance(spec, dict):
        if set(spec) != {"from", "to", "every"}:
            raise ConfigError(f"{where} as a ramp must have the keys from, to and every (stepped) or from, to, "
                              f"over and optionally shape (continuous); got {sorted(spec)}.")
        try:
            a, b, every = float(spec["from"]), float(spec["to"]), int(spec["every"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: from and to must be numbers and every an integer, got {spec!r}.") from None
        if every < 1:
            raise ConfigError(f"{where}.every must be an integer >= 1, got {spec['every']!r}.")
        sign = 1.0 if b >= a else -1.0

        def ramp(epoch: int) -> float:
            return a + sign * min(abs(b - a), epoch // every)

        return ramp
    try:
        steps = sorted((int(e), float(v)) for e, v in spec)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a list of [first epoch, value] pairs, got {spec!r}.") from None
    if any(not math.isfinite(v) or v < 0 for _, v in steps):
        raise ConfigError(f"{where}: every value must be a finite number >= 0, got {spec!r}.")
    if not steps or steps[0][0] != 0:
        raise ConfigError(f"{where} must start at epoch 0, got {spec!r}.")

    def schedule(epoch: int) -> float:
        return [v for e, v in steps if e <= epoch][-1]

    return schedule


def _continuous_ramp(spec: dict, where: str):
    if not set(spec) <= {"from", "to", "over", "shape"} or not {"from", "to", "over"} <= set(spec):
        raise ConfigError(f"{where} as a continuous ramp must have the keys from, to, over and optionally shape; "
                          f"got {sorted(spec)}.")
    a = check_config_value(spec["from"], f"{where}.from", "number")
    b = check_config_value(spec["to"], f"{where}.to", "number")
    over = check_config_value(spec["over"], f"{where}.over", "positive_int")
    shape = spec.get("shape", "linear")
    if shape not in ("linear", "geometric"):
        raise ConfigError(f"{where}.shape must be 'linear' or 'geometric', got {shape!r}.")
    if shape == "geometric" and (a <= 0 or b <= 0):
        raise ConfigError(f"{where}: a geometric ramp needs from and to > 0, got {a} and {b}.")

    def ramp(epoch: int) -> float:
        f = min(1.0, epoch / over)
        return a * (b / a) ** f if shape == "geometric" else a + (b - a) * f

    return ramp


def check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"device {device!r} is not a torch device ({err}).") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine; use 'cpu'.")


def load_data(cfg: dict):
    """(train, valid, eval test, image shape) as float32 numpy arrays."""
    import numpy as np

    d = cfg["data"]
    if d["kind"] == "standardized" and d["name"] != "digits":
        raise ConfigError("data.kind 'standardized' (real values for Gaussian visible units) is for data.name "
                          f"'digits', not {d['name']!r}.")
    if d["name"] == "files":
        from natural_bm.datasets import load_files

        if d["train"] is None:
            raise ConfigError("data.name 'files' needs data.train, the path of a .npy, .npz or .csv file.")
        stochastic = d["kind"] == "stochastic"
        x, valid, test = load_files(d["train"], d["valid"], d["test"], d["key"], d["valid_fraction"],
                                    d["test_fraction"], "probability" if stochastic else d["kind"],
                                    d["eval_kind"] if stochastic else d["kind"], seed=cfg["seed"])
        side = math.isqrt(x.shape[1])
        shape = (side, side) if side * side == x.shape[1] else (1, x.shape[1])
        return x, (valid if len(valid) else None), (test if len(test) else None), shape
    if d["name"] == "digits":
        from natural_bm.datasets import load_digits

        if d["kind"] == "stochastic":
            data, evaluation = load_digits("probability", cfg["seed"]), load_digits(d["eval_kind"], cfg["seed"])
            return data.train, evaluation.valid, evaluation.test, (8, 8)
        data = load_digits(d["kind"], cfg["seed"])
        return data.train, data.valid, data.test, (8, 8)
    if d["name"] == "bars_and_stripes":
        from natural_bm.datasets import bars_and_stripes

        # three independent draws from the known distribution: train, validation, test
        x = bars_and_stripes(d["n_samples"], d["size"], seed=cfg["seed"])
        valid = bars_and_stripes(max(1, d["n_samples"] // 5), d["size"], seed=cfg["seed"] + 1)
        test = bars_and_stripes(max(1, d["n_samples"] // 5), d["size"], seed=cfg["seed"] + 2)
        return x, valid, test, (d["size"], d["size"])
    from natural_bm.datasets import load_mnist

    kind = "probability" if d["kind"] == "stochastic" else d["kind"]  # stochastic: binarised per minibatch
    data = load_mnist(kind, path=d["path"], n_train=d["n_train"], n_valid=d["n_valid"])
    evaluation = data if d["eval_kind"] == kind else load_mnist(d["eval_kind"], path=d["path"], n_train=d["n_train"],
                                                                n_valid=d["n_valid"])
    test = evaluation.test
    # the validation split is monitored as evaluated: once-sampled when training binarises per minibatch
    valid_split = evaluation.valid if d["kind"] == "stochastic" else data.valid
    valid = valid_split if len(valid_split) else None
    return np.ascontiguousarray(data.train), valid, test, (28, 28)


def load_labels(cfg: dict):
    """(train, valid, test) class labels (int arrays, aligned with ``load_data``'s rows) when
    ``data.labels`` is true, else None. MNIST and digits have labels."""
    d = cfg["data"]
    if not d["labels"]:
        return None
    if d["name"] == "mnist":
        from natural_bm.datasets import load_mnist

        data = load_mnist("probability", path=d["path"], n_train=d["n_train"], n_valid=d["n_valid"])
    elif d["name"] == "digits":
        from natural_bm.datasets import load_digits

        data = load_digits("probability", cfg["seed"])
    else:
        raise ConfigError(f"data.labels: {d['name']!r} data has no labels (mnist and digits have).")
    return data.train_labels, data.valid_labels, data.test_labels


def _made(cls, *args, **kwargs):
    """``cls(*args, **kwargs)`` with a bad unit type reported as a ConfigError naming model.units."""
    try:
        return cls(*args, **kwargs)
    except ValueError as err:
        if "unit type" in str(err) or "sigma" in str(err) or "`units`" in str(err):
            raise ConfigError(f"model.units: {err}") from None
        raise


def build_model(cfg: dict, n_visible: int):
    from natural_bm import DBM, RBM
    from natural_bm.training import SGD, Adam

    m, t, o = cfg["model"], cfg["training"], cfg["optimizer"]
    common = {"init": m["init"], "weight_scale": m["weight_scale"], "seed": cfg["seed"], "device": cfg["device"],
              "units": m["units"]}
    if m["type"] == "rbm":
        if m["units"] is not None and len(m["units"]) != 2:
            raise ConfigError(f"model.units of an RBM lists 2 unit types (visible, hidden), got {len(m['units'])}.")
        model = _made(RBM, n_visible, m["n_hidden"], **common)
        algorithm = t["algorithm"]
        alg_kwargs = {"k": t["k"]} | ({"n_chains": t["n_chains"]} if algorithm in ("pcd", "pt") else {})
    else:
        sizes = m["layer_sizes"] or [n_visible, m["n_hidden"]]
        if sizes[0] != n_visible:
            raise ConfigError(f"model.layer_sizes[0] = {sizes[0]} but the data has {n_visible} columns.")
        topology = {int(k): v for k, v in m["topology"].items()} if m["topology"] else None
        model = _made(DBM, sizes, topology, **common)
        algorithm = "pt" if t["algorithm"] == "pt" else "mfpcd"  # a DBM's positive phase is mean-field
        alg_kwargs = {"k": t["k"], "n_chains": t["n_chains"], "mf_steps": t["mf_steps"]}
    if algorithm == "pt":
        alg_kwargs |= {"n_temperatures": t["n_temperatures"], "min_beta": t["min_beta"]}
    if o["name"] == "sgd":
        opt = SGD(o["lr"], o["momentum"], o["nesterov"], o["decay"], o["decay_mode"])
    else:
        opt = Adam(o["lr"], o["beta_1"], o["beta_2"], o["epsilon"], o["decay"], o["decay_mode"])
    if t["jit_compile"] not in (True, False, "auto"):
        raise ConfigError(f"training.jit_compile must be true, false or 'auto', got {t['jit_compile']!r}.")
    try:
        model.compile(opt, algorithm, l1=t["l1"], l2=t["l2"], jit_compile=t["jit_compile"],
                      cuda_graph=t["cuda_graph"], centering=t["centering"], max_norm=t["max_norm"],
                      sparsity=t["sparsity"], **alg_kwargs)
    except (ValueError, TypeError) as err:
        for key in ("centering", "sparsity"):
            if t[key] is not None and (key in str(err) or key.capitalize() in str(err)):
                raise ConfigError(f"training.{key}: {err}") from None
        raise
    return model


def warm_start(model, cfg: dict) -> None:
    """Copy the parameters of the model file ``model.init_from`` into ``model`` (nothing when it is null).

    Only weights and biases are read: the optimiser, persistent chains and centering offsets start as
    this config makes them. The path is relative to the working directory. ConfigError naming
    ``model.init_from`` when the file is missing, damaged, or holds another class or architecture.
    """
    path = cfg["model"]["init_from"]
    if path is None:
        return
    if not Path(path).is_file():
        raise ConfigError(f"model.init_from: no model file at {path} (the path is relative to the directory "
                          f"natural-bm runs in).")
    try:
        model.warm_start(path)
    except ValueError as err:
        raise ConfigError(f"model.init_from: {err}") from None


#: where pre-training keeps its per-epoch checkpoints: <out>/pretrain/rbm<i>/checkpoints/
PRETRAIN_DIR = "pretrain"
#: history.png is re-drawn after an epoch only when this many seconds have passed since the last drawing
#: (a drawing costs 1-3 s on 2 cores, more than a small model's epoch); the end of training draws the rest
PLOT_INTERVAL_S = 30.0


def _pretrain(model, x, cfg: dict, out: Path, verbose: int) -> None:
    """Greedy pre-training of a DBM from the config's ``pretrain`` section; logs to pretrain_rbm<i>.csv.

    Every RBM is checkpointed after every epoch (the newest one kept, under ``pretrain/rbm<i>/``), and a
    resumed run continues each RBM from its newest intact checkpoint: bit-identical to an uninterrupted
    pre-training, as the main phase's resume is."""
    from natural_bm.callbacks import (
        CSVLogger,
        GibbsStepsScheduler,
        LearningRateScheduler,
        MomentumRateScheduler,
        PeriodicSave,
        load_training_state,
    )
    from natural_bm.training import SGD, pretrain_dbm

    p = cfg["pretrain"]
    schedules = _pretrain_schedules(p)
    classes = {"lr": LearningRateScheduler, "momentum": MomentumRateScheduler, "k": GibbsStepsScheduler}

    def folder(layer: int) -> Path:
        return out / PRETRAIN_DIR / f"rbm{layer}"

    newest: dict[int, int | None] = {}  # each RBM's newest intact checkpoint, found once

    def callbacks(layer: int) -> list:
        made = [classes[key](fn) for key, fn in schedules.items() if fn is not None]
        newest[layer] = latest_intact_checkpoint(folder(layer))[0]
        checkpoints = folder(layer) / "checkpoints"
        return [CSVLogger(out / f"pretrain_rbm{layer}.csv", append=newest[layer] is not None), *made,
                PeriodicSave(checkpoints / WEIGHTS_NAME, opt_path=checkpoints / STATE_NAME, keep_last=1)]

    def restore(layer: int, rbm, cbs: list) -> int:
        epoch = newest[layer]
        if epoch is None:
            return 0
        weights, state = _checkpoint_paths(folder(layer), epoch)
        rbm.load_weights(weights)
        load_training_state(rbm, state, cbs)
        _truncate_csv(out / f"pretrain_rbm{layer}.csv", epoch)
        if verbose:
            print(f"natural-bm: pre-training RBM {layer} continues after its epoch {epoch}.")
        return epoch + 1

    kwargs = {"k": p["k"]} | ({"n_chains": p["n_chains"]} if p["algorithm"] == "pcd" else {})
    pretrain_dbm(model, x, epochs=p["epochs"], batch_size=cfg["training"]["batch_size"], seed=cfg["seed"],
                 optimizer_factory=lambda layer: SGD(p["lr"], p["momentum"], decay=p["decay"],
                                                     decay_mode=p["decay_mode"]),
                 algorithm=p["algorithm"], verbose=verbose, callbacks_factory=callbacks, restore=restore,
                 binarize=cfg["data"]["kind"] == "stochastic", l2=p["l2"], max_norm=p["max_norm"], **kwargs)


def snapshot(out: str | os.PathLike, dest: str | os.PathLike) -> tuple[Path, list[str]]:
    """Pack what ``--resume`` needs of results folder ``out`` into one tar file ``dest`` (written
    atomically), to carry an unfinished run to another machine or commit it between sessions:
    ``config.json``, the logs (``log.csv``, ``pretrain_rbm<i>.csv``), the newest intact checkpoint's
    weights and training state, or, before the first one, the newest checkpoint of every pre-training
    RBM. Unpack it into an empty folder and run ``natural-bm train --resume`` there.

    Returns (``dest``, the packed paths relative to ``out``)."""
    import tarfile

    from natural_bm.io import atomic_write

    out = Path(out)
    if not (out / "config.json").is_file():
        raise FileNotFoundError(f"{out} is not a results folder (no config.json); pass the folder "
                                f"`natural-bm train --out` wrote.")
    names = ["config.json"] + sorted(p.name for p in out.glob("*.csv"))
    epoch, _ = latest_intact_checkpoint(out)
    if epoch is not None:
        names += [str(p.relative_to(out)) for p in _checkpoint_paths(out, epoch)]
    else:
        for folder in sorted((out / PRETRAIN_DIR).glob("rbm*")):
            rbm_epoch, _ = latest_intact_checkpoint(folder)
            if rbm_epoch is not None:
                names += [str(p.relative_to(out)) for p in _checkpoint_paths(folder, rbm_epoch)]

    def write(tmp: Path) -> None:
        with tarfile.open(tmp, "w") as tar:
            for name in names:
                tar.add(out / name, arcname=name)

    return atomic_write(dest, write), names


STATUS_COMPLETE, STATUS_EARLY, STATUS_DIVERGED = "complete", "early_stopped", "diverged"
LOCK_NAME = ".lock"
WEIGHTS_NAME, STATE_NAME = "weights.pt", "state.pt"  # checkpoint templates: weights_epoch0007.pt, state_epoch0007.pt


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


def _checkpoint_paths(folder: Path, epoch: int) -> tuple[Path, Path]:
    """(weights, training state) of ``epoch``, named as the run's ``PeriodicSave`` names them."""
    from natural_bm.callbacks.sample_callback import epoch_path

    return (epoch_path(folder / "checkpoints" / WEIGHTS_NAME, epoch, ".pt"),
            epoch_path(folder / "checkpoints" / STATE_NAME, epoch, ".pt"))


def config_changes(old: dict | None, new: dict, where: str = "") -> list[str]:
    """``"key: old -> new"`` for every (dotted) key whose value differs between two configs; [] when
    ``old`` is None (a checkpoint written before configs were stored in it)."""
    if old is None:
        return []
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b, name = old.get(key), new.get(key), f"{where}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def latest_intact_checkpoint(folder: Path) -> tuple[int | None, dict | None]:
    """(epoch, training-state payload) of the newest checkpoint whose two files are intact.

    Damaged or half-present newer checkpoints are skipped with a
    ``RuntimeWarning`` naming the file. (None, None) when there is none.
    """
    import warnings

    from natural_bm.callbacks.periodic_save import read_training_state
    from natural_bm.models.base import BoltzmannMachine

    epochs = set()
    for p in (folder / "checkpoints").glob("*_epoch*.pt"):
        try:
            epochs.add(int(p.stem.split("_epoch")[-1]))
        except ValueError:
            continue
    for epoch in sorted(epochs, reverse=True):
        weights, state = _checkpoint_paths(folder, epoch)
        try:
            BoltzmannMachine._read(weights)
            payload = read_training_state(state)
        except (FileNotFoundError, ValueError) as err:
            warnings.warn(f"skipping checkpoint of epoch {epoch}: {err}", RuntimeWarning, stacklevel=2)
            continue
        return epoch, payload
    return None, None


def _remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files (``.name.XXXX.tmp``) that a killed run left behind."""
    from natural_bm.io import writes_files

    removed = []
    if not writes_files():  # rank 0 of a process group tidies for all
        return removed
    for p in folder.rglob(".*.tmp"):
        if p.is_file():
            p.unlink()
            removed.append(p)
    return removed


def _truncate_csv(csv: Path, last_epoch: int) -> None:
    """Drop log rows after ``last_epoch`` (written before a crash, not covered by a checkpoint); warn
    when rows up to ``last_epoch`` are missing (an older log restored over a newer checkpoint)."""
    import pandas as pd

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
        import warnings

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


def _reverse_ais(model, base_data, x, log_z_forward: float, test_ll: float, a: dict, seed: int) -> dict:
    """Reverse AIS from the model's samples (PCD chains if any, else Gibbs chains from the data)
    with the forward run's base model; returns ``logZ_reverse``, ``test_ll_reverse`` (conservative when
    the two bracket), ``ais_ess_reverse``, ``brackets`` (reverse >= forward) and ``bracket`` in words."""
    from natural_bm.estimators import AIS
    from natural_bm.estimators.ais import describe_bracket

    ais = AIS(model, data=base_data, n_runs=a["n_runs"], n_betas=a["n_betas"], seed=seed, progress=False,
              parity=a["parity"])
    chains = model.algorithm.model_chains()
    log_z_rev = ais.run_reverse(v_init=chains, n_gibbs=a["reverse_gibbs"], data=x)
    return {"logZ_reverse": log_z_rev, "test_ll_reverse": test_ll - (log_z_rev - log_z_forward),
            "ais_ess_reverse": ais.ess_reverse, "brackets": bool(log_z_rev >= log_z_forward),
            "bracket": describe_bracket(log_z_forward, log_z_rev)}


def _read_results(out: Path) -> dict | None:
    try:
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def _run_is_complete(out: Path) -> dict | None:
    """The results of a finished run (complete or early-stopped, with its model file), else None."""
    results = _read_results(out)
    if results and results.get("status") in (STATUS_COMPLETE, STATUS_EARLY) and (out / "model.pt").is_file():
        return results
    return None


def _clear_for_fresh_start(out: Path) -> None:
    """Remove what a run killed before its first checkpoint wrote, keeping config.json, the lock and
    what pre-training has written (its checkpoints and logs, from which it continues)."""
    import shutil

    from natural_bm.io import writes_files

    if not writes_files():
        return
    for p in out.iterdir():
        if p.name in ("config.json", LOCK_NAME, PRETRAIN_DIR) or p.name.startswith("pretrain_rbm"):
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _write_summary(out: Path, cfg: dict, results: dict, summary_cb) -> None:
    """summary.txt: the log's summary (``SummaryCallback``), then how the run ended and its final numbers."""
    from natural_bm.callbacks.summary_callback import summarize
    from natural_bm.viz import history_frame

    text = getattr(summary_cb, "text", None)
    if text is None:
        csv = out / "log.csv"
        text = summarize(history_frame(csv), cfg)[0] if csv.is_file() else "natural_bm run summary\n"
    lines = ["", f"status: {results['status']}"]
    if results.get("stop_reason"):
        lines.append(f"stopped: {results['stop_reason']}")
    lines.append(f"epochs run: {results['epochs_run']} of {cfg['training']['epochs']}")
    if results["status"] == STATUS_DIVERGED:
        lines.append(f"model.pt not written; last finite checkpoint: epoch {results.get('last_finite_epoch')}")
    for key in ("logZ", "ais_ess", "test_ll", "test_ll_stderr", "logZ_reverse", "test_ll_reverse", "logZ_exact",
                "test_ll_importance", "test_ll_importance_reverse"):
        if key in results:
            lines.append(f"{key}: {results[key]:.4f}")
    atomic_write_text(out / "summary.txt", text + "\n".join(lines) + "\n")


def train(cfg: dict, out: str | os.PathLike, resume: bool = False, verbose: int | str = "auto") -> dict:
    """Run (or resume) a config; returns the results dict (also in ``results.json``).

    Everything that can be checked is checked before the results folder is
    touched: the config, the output path, the data and the model. The folder
    is then held with an exclusive OS lock (``<out>/.lock``; released on exit
    and on a crash) so that two runs can never write into it together.

    ``resume=True`` continues from the newest intact checkpoint (damaged
    ones are skipped with a warning; orphaned temporary files are removed);
    with no checkpoint at all it starts the run again from the saved config.
    Resuming a finished run finishes whatever is missing (model file, final
    AIS, samples, summary, results) and never rewrites a complete
    ``results.json``.

    ``results["status"]`` is ``"complete"``, ``"early_stopped"`` (with
    ``stop_reason``) or ``"diverged"``: then ``model.pt`` is not written and
    the last finite checkpoint stays the one to resume from.
    """
    from natural_bm.io import exclusive_lock

    out = check_out_path(out)
    x, valid, test, shape = load_data(cfg)
    image_shape = tuple(cfg["samples"]["image_shape"] or shape)
    if math.prod(image_shape) != x.shape[1]:
        raise ConfigError(f"samples.image_shape {list(image_shape)} covers {math.prod(image_shape)} pixels but the "
                          f"data has {x.shape[1]} columns.")
    model = build_model(cfg, x.shape[1])  # checks the model settings before anything is written
    if not resume:
        warm_start(model, cfg)  # checks model.init_from before anything is written
    labels = load_labels(cfg)
    if labels is not None:
        try:
            model.label_layer()
        except ValueError as err:
            raise ConfigError(f"data.labels: {err}") from None
    if resume and not (out / "config.json").is_file():
        raise FileNotFoundError(f"{out / 'config.json'} not found: --resume needs a results folder.")
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out / LOCK_NAME, what=f"results folder {out}"):
        return _train_locked(cfg, out, resume, verbose, model, x, valid, test, image_shape, labels)


def _train_locked(cfg, out: Path, resume: bool, verbose: int, model, x, valid, test, image_shape, labels) -> dict:
    import warnings

    from natural_bm.callbacks import (
        AISCallback,
        CSVLogger,
        GibbsStepsScheduler,
        LearningRateScheduler,
        MomentumRateScheduler,
        PeriodicSave,
        PlotCallback,
        SampleCallback,
        SummaryCallback,
        load_training_state,
    )
    from natural_bm.callbacks.callback_list import apply_restored_states
    from natural_bm.training.fit import resolve_verbose

    verbose = resolve_verbose(verbose)
    t = cfg["training"]
    last_epoch = t["epochs"] - 1
    cfg_as_saved = json.loads(json.dumps(cfg))  # as config.json holds it (lists, not tuples): what checkpoints keep
    checkpoint, payload = None, None
    if resume:
        done = _run_is_complete(out)
        if done is not None:
            if verbose:
                print(f"natural-bm: {out} holds a finished run; nothing to resume.")
            return done
        _remove_orphans(out)
        checkpoint, payload = latest_intact_checkpoint(out)
        changed = config_changes((payload or {}).get("run_config"), cfg_as_saved)
        if changed:
            warnings.warn(f"{out / 'config.json'} was edited since the checkpoint of epoch {checkpoint} was "
                          f"written ({'; '.join(changed)}); resuming with the edited config. Restore the old "
                          f"values to continue the run as it started.", RuntimeWarning, stacklevel=2)
        if checkpoint is None:
            if (out / PRETRAIN_DIR).is_dir():
                warnings.warn(f"no intact checkpoint in {out / 'checkpoints'}: the run continues its pre-training "
                              f"from {out / PRETRAIN_DIR}.", RuntimeWarning, stacklevel=2)
            else:
                warnings.warn(f"no intact checkpoint in {out / 'checkpoints'}: starting the run again from its "
                              f"saved config.", RuntimeWarning, stacklevel=2)
            _clear_for_fresh_start(out)
    else:
        if any(p.name != LOCK_NAME for p in out.iterdir()):
            raise FileExistsError(f"results folder {out} is not empty; choose another or pass --resume.")
        dist.barrier()  # every rank has looked before rank 0 writes
        atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    if checkpoint is None:
        if resume:
            warm_start(model, cfg)  # a resume that starts the run again
        if cfg["model"]["init_from"] is None and model.supports_init_from_data:
            model.init_from_data(x)
        if cfg["model"]["type"] == "dbm" and cfg["pretrain"]["epochs"]:
            _pretrain(model, x, cfg, out, verbose)

    a, s = cfg["ais"], cfg["samples"]
    ais = AISCallback(model, n_runs=a["n_runs"], n_betas=a["n_betas"], exact=a["exact"],
                      epoch_ls=a["epochs"] if a["epochs"] is not None else [last_epoch], seed=cfg["seed"],
                      parity=a["parity"])
    sampler = SampleCallback(model, out / "samples.png", n_chains=s["n_chains"], n_samples=s["n_samples"],
                             plot_every=s["plot_every"], epoch_ls=[last_epoch], image_shape=image_shape,
                             seed=cfg["seed"])
    csv = out / "log.csv"
    summary = SummaryCallback(out, csv)
    plot = PlotCallback(out, csv, min_interval=PLOT_INTERVAL_S)
    callbacks = [
        CSVLogger(csv, append=checkpoint is not None),
        ais,
        sampler,
        plot,
        summary,
        # before PeriodicSave, so a stop (early stopping, divergence) is known when the checkpoint is written
        *(make_callback(entry) for entry in cfg["callbacks"]),
        PeriodicSave(out / "checkpoints" / WEIGHTS_NAME, opt_path=out / "checkpoints" / STATE_NAME,
                     keep_last=t["keep_checkpoints"], keep_best=t["best_checkpoint"],
                     run_config=cfg_as_saved),
    ]
    for key, cls in (("lr", LearningRateScheduler), ("momentum", MomentumRateScheduler), ("k", GibbsStepsScheduler)):
        schedule = steps_of(cfg["schedule"][key], f"schedule.{key}")
        if schedule is not None:
            callbacks.append(cls(schedule))

    initial_epoch, final_epoch = 0, None
    if checkpoint is not None:
        weights, state = _checkpoint_paths(out, checkpoint)
        model.load_weights(weights)
        load_training_state(model, state, callbacks)
        _truncate_csv(csv, checkpoint)
        initial_epoch = checkpoint + 1
        if checkpoint >= last_epoch or payload.get("stop_reason"):
            final_epoch = checkpoint  # training had ended; only the finishing steps are missing
            model.stop_reason = payload.get("stop_reason")
            apply_restored_states(callbacks, model)  # no fit runs, so no on_train_begin
            plot.plot()  # nor on_train_end, which draws history.png; the log was truncated to the checkpoint
    if final_epoch is None:
        if labels is None:
            y, validation = None, valid
        else:
            y, validation = labels[0], (None if valid is None else (valid, labels[1]))
        history = model.fit(x, batch_size=t["batch_size"], epochs=t["epochs"], validation_data=validation,
                            callbacks=callbacks, verbose=verbose, initial_epoch=initial_epoch, seed=cfg["seed"],
                            binarize=cfg["data"]["kind"] == "stochastic", y=y)
        final_epoch = history.epoch[-1] if history.epoch else initial_epoch - 1
    return _finish(cfg, out, model, x, valid, test, final_epoch, ais, sampler, summary, labels)


def _finish(cfg, out: Path, model, x, valid, test, final_epoch: int, ais, sampler, summary, labels=None) -> dict:
    """Model file, final AIS and likelihoods, samples, plot, summary and results of a run whose training ended."""
    import torch

    from natural_bm.callbacks.sample_callback import epoch_path
    from natural_bm.estimators import log_likelihood
    from natural_bm.training.fit import monitor_rows

    if model.diverged:
        last_ok, _ = latest_intact_checkpoint(out)
        results = {"status": STATUS_DIVERGED, "stop_reason": model.stop_reason, "epochs_run": final_epoch + 1,
                   "last_finite_epoch": last_ok}
        atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
        _write_summary(out, cfg, results, summary)
        return results
    model.save(out / "model.pt")
    results: dict = {"status": STATUS_EARLY if model.stop_reason else STATUS_COMPLETE, "epochs_run": final_epoch + 1}
    if model.stop_reason:
        results["stop_reason"] = model.stop_reason
    def as_tensor(d):
        return None if d is None else torch.as_tensor(d, dtype=model.dtype, device=model.device)

    # the rows fit monitored: the AIS base model of the forward and the reverse runs
    base_data = monitor_rows(as_tensor(x), cfg["seed"], cfg["data"]["kind"] == "stochastic")
    z = ais.results.get(final_epoch)
    if z is None:  # the run ended before the epoch AIS was planned for (early stopping)
        ais.set_model(model)
        ais.params = {"train_data": base_data, "validation_data": as_tensor(valid), "verbose": 0}
        z = ais.evaluate(final_epoch)
    a = cfg["ais"]
    ll, se = log_likelihood(model, test, z["logZ"]) if test is not None else (math.nan, math.nan)
    results.update(logZ=z["logZ"], logZ_lo=z["logZ_lo"], logZ_hi=z["logZ_hi"], ais_ess=z["ais_ess"],
                   final_epoch=final_epoch)
    if test is not None:
        results.update(test_ll=ll, test_ll_stderr=se)
        if labels is not None:  # the label layer's most probable class under p(y | v)
            results["test_accuracy"] = float((model.predict(test).cpu().numpy() == labels[2]).mean())
    if "logZ_exact" in z and z["logZ_exact"] == z["logZ_exact"]:
        results["logZ_exact"] = z["logZ_exact"]
        if test is not None:
            results["test_ll_exact"] = log_likelihood(model, test, z["logZ_exact"])[0]
    if test is not None and a["importance_samples"]:
        iw, iw_se = log_likelihood(model, test, z["logZ"], importance_samples=a["importance_samples"],
                                   seed=cfg["seed"])
        results.update(test_ll_importance=iw, test_ll_importance_stderr=iw_se)
    if a["reverse"]:
        results.update(_reverse_ais(model, base_data, x, z["logZ"], ll, a, cfg["seed"] + final_epoch))
        if test is None:
            results.pop("test_ll_reverse")
        elif "test_ll_importance" in results:  # the conservative one: reverse AIS's log Z is biased high
            results["test_ll_importance_reverse"] = results["test_ll_importance"] - (
                results["logZ_reverse"] - results["logZ"])
    if not epoch_path(sampler.savename, final_epoch).is_file():
        sampler.set_model(model)
        sampler.sample(final_epoch)
    _write_summary(out, cfg, results, summary)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results
