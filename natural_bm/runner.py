"""Config-driven training runs: what ``natural-bm train`` does.

A config (JSON or YAML) has these sections; every key is optional except
``model``::

    model:     {type: rbm, n_hidden: 500}              # or {type: dbm, layer_sizes: [784, 500, 1000], topology: ...}
    data:      {name: mnist, kind: probability, n_train: 50000, n_valid: 10000, eval_kind: sampled}
               # or {name: bars_and_stripes, size: 3, n_samples: 1000}
    training:  {algorithm: pcd, k: 1, n_chains: 100, epochs: 10, batch_size: 100, l1: 0.0, l2: 0.0,
                pretrain_epochs: 0, mf_steps: 10, jit_compile: auto}   # see BoltzmannMachine.compile
    optimizer: {name: sgd, lr: 0.01, momentum: 0.0, nesterov: false, decay: 0.0}   # or adam: lr, beta_1, ...
    ais:       {n_runs: 100, n_betas: null, epochs: [], exact: false,              # at the last epoch by default
                reverse: false, reverse_gibbs: 1000}  # reverse AIS after training: a conservative bracket
    samples:   {n_chains: 10, n_samples: 10, plot_every: 1000, image_shape: [28, 28]}
    schedule:  {lr: [[0, 0.01], [50, 0.001]], momentum: [[0, 0.5], [5, 0.9]]}  # [first epoch, value] steps
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
import json
import os
from pathlib import Path

import torch

from natural_bm.io import atomic_write_text

DEFAULTS: dict = {
    "model": {"type": "rbm", "n_hidden": 500, "layer_sizes": None, "topology": None, "init": "gaussian",
              "weight_scale": 0.01},
    "data": {"name": "mnist", "kind": "probability", "n_train": 50000, "n_valid": 10000, "eval_kind": "sampled",
             "size": 3, "n_samples": 1000, "path": None},
    "training": {"algorithm": "pcd", "k": 1, "n_chains": 100, "epochs": 10, "batch_size": 100, "l1": 0.0,
                 "l2": 0.0, "pretrain_epochs": 0, "mf_steps": 10, "jit_compile": "auto"},
    "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.0, "nesterov": False, "decay": 0.0, "beta_1": 0.9,
                  "beta_2": 0.999, "epsilon": 1e-8},
    "ais": {"n_runs": 100, "n_betas": None, "epochs": None, "exact": False, "reverse": False,
            "reverse_gibbs": 1000},
    "samples": {"n_chains": 10, "n_samples": 10, "plot_every": 1000, "image_shape": None},
    "schedule": {"lr": None, "momentum": None},
    "callbacks": [],
    "seed": 0,
    "device": "cpu",
}


class ConfigError(ValueError):
    """A config that cannot be run; the message says which key and what is valid."""


def read_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as err:
        raise ConfigError(f"{path}: cannot parse ({err}).") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, got {type(raw).__name__}.")
    return resolve_config(raw)


def resolve_config(raw: dict) -> dict:
    """Merge ``raw`` over the defaults; unknown keys raise ConfigError listing the valid ones."""
    cfg = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        if key not in cfg:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {sorted(cfg)}.")
        if isinstance(cfg[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {key!r} must be a mapping.")
            for sub, v in value.items():
                if sub not in cfg[key]:
                    raise ConfigError(f"unknown key {key}.{sub}; valid keys: {sorted(cfg[key])}.")
                cfg[key][sub] = v
        else:
            cfg[key] = value
    if not isinstance(cfg["callbacks"], list):
        raise ConfigError("config key 'callbacks' must be a list of {name: ..., args: {...}}.")
    for entry in cfg["callbacks"]:
        make_callback(entry)  # validates names and arguments before anything is written
    for key in ("lr", "momentum"):
        steps_of(cfg["schedule"][key], f"schedule.{key}")
    if cfg["model"]["type"] not in ("rbm", "dbm"):
        raise ConfigError(f"model.type must be 'rbm' or 'dbm', got {cfg['model']['type']!r}.")
    if cfg["data"]["name"] not in ("mnist", "bars_and_stripes"):
        raise ConfigError(f"data.name must be 'mnist' or 'bars_and_stripes', got {cfg['data']['name']!r}.")
    if cfg["optimizer"]["name"] not in ("sgd", "adam"):
        raise ConfigError(f"optimizer.name must be 'sgd' or 'adam', got {cfg['optimizer']['name']!r}.")
    check_device(cfg["device"])
    return cfg


CONFIG_CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "CyclicLR", "ModelCheckpoint", "OptimizerSpy",
                    "TensorBoard", "RemoteMonitor", "TerminateOnNaN")


def make_callback(entry):
    """A callback from ``{name: <class in CONFIG_CALLBACKS>, args: {...}}``."""
    import natural_bm.callbacks as cbs

    if not isinstance(entry, dict) or "name" not in entry or set(entry) - {"name", "args"}:
        raise ConfigError(f"each entry of 'callbacks' must be {{name: ..., args: {{...}}}}, got {entry!r}.")
    if entry["name"] not in CONFIG_CALLBACKS:
        raise ConfigError(f"callbacks: unknown name {entry['name']!r}; valid names: {list(CONFIG_CALLBACKS)}.")
    try:
        return getattr(cbs, entry["name"])(**(entry.get("args") or {}))
    except TypeError as err:
        raise ConfigError(f"callbacks: {entry['name']}: {err}.") from err


def steps_of(spec, where: str):
    """A piecewise-constant schedule [[first epoch, value], ...] as a function of the epoch (or None)."""
    if spec is None:
        return None
    try:
        steps = sorted((int(e), float(v)) for e, v in spec)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a list of [first epoch, value] pairs, got {spec!r}.") from None
    if not steps or steps[0][0] != 0:
        raise ConfigError(f"{where} must start at epoch 0, got {spec!r}.")

    def schedule(epoch: int) -> float:
        return [v for e, v in steps if e <= epoch][-1]

    return schedule


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
    if d["name"] == "bars_and_stripes":
        from natural_bm.datasets import bars_and_stripes

        x = bars_and_stripes(d["n_samples"], d["size"], seed=cfg["seed"])
        held = bars_and_stripes(max(1, d["n_samples"] // 5), d["size"], seed=cfg["seed"] + 1)
        return x, held, held, (d["size"], d["size"])
    from natural_bm.datasets import load_mnist

    data = load_mnist(d["kind"], path=d["path"], n_train=d["n_train"], n_valid=d["n_valid"])
    test = data.test if d["eval_kind"] == d["kind"] else load_mnist(d["eval_kind"], path=d["path"]).test
    valid = data.valid if len(data.valid) else None
    return np.ascontiguousarray(data.train), valid, test, (28, 28)


def build_model(cfg: dict, n_visible: int):
    from natural_bm import DBM, RBM
    from natural_bm.training import SGD, Adam

    m, t, o = cfg["model"], cfg["training"], cfg["optimizer"]
    common = {"init": m["init"], "weight_scale": m["weight_scale"], "seed": cfg["seed"], "device": cfg["device"]}
    if m["type"] == "rbm":
        model = RBM(n_visible, m["n_hidden"], **common)
        alg_kwargs = {"k": t["k"]} | ({"n_chains": t["n_chains"]} if t["algorithm"] == "pcd" else {})
    else:
        sizes = m["layer_sizes"] or [n_visible, m["n_hidden"]]
        if sizes[0] != n_visible:
            raise ConfigError(f"model.layer_sizes[0] = {sizes[0]} but the data has {n_visible} columns.")
        topology = {int(k): v for k, v in m["topology"].items()} if m["topology"] else None
        model = DBM(sizes, topology, **common)
        alg_kwargs = {"k": t["k"], "n_chains": t["n_chains"], "mf_steps": t["mf_steps"]}
    if o["name"] == "sgd":
        opt = SGD(o["lr"], o["momentum"], o["nesterov"], o["decay"])
    else:
        opt = Adam(o["lr"], o["beta_1"], o["beta_2"], o["epsilon"], o["decay"])
    algorithm = t["algorithm"] if m["type"] == "rbm" else "mfpcd"
    if t["jit_compile"] not in (True, False, "auto"):
        raise ConfigError(f"training.jit_compile must be true, false or 'auto', got {t['jit_compile']!r}.")
    model.compile(opt, algorithm, l1=t["l1"], l2=t["l2"], jit_compile=t["jit_compile"], **alg_kwargs)
    return model


def _last_checkpoint(folder: Path) -> int | None:
    epochs = [int(p.stem.split("_epoch")[-1]) for p in (folder / "checkpoints").glob("weights_epoch*.pt")
              if (folder / "checkpoints" / f"state_epoch{p.stem.split('_epoch')[-1]}.pt").is_file()]
    return max(epochs) if epochs else None


def _truncate_csv(csv: Path, last_epoch: int) -> None:
    """Drop log rows after ``last_epoch`` (written before a crash, not covered by a checkpoint)."""
    import pandas as pd

    if csv.is_file():
        df = pd.read_csv(csv)
        atomic_write_text(csv, df[df["epoch"] <= last_epoch].to_csv(index=False))


def _reverse_ais(model, x, log_z_forward: float, test_ll: float, a: dict, seed: int) -> dict:
    """Reverse AIS from the model's samples (PCD chains if any, else Gibbs chains from the data)
    with the forward run's base model; returns ``logZ_reverse`` and the conservative ``test_ll_reverse``."""
    from natural_bm.estimators import AIS
    from natural_bm.training.fit import MONITOR_ROWS

    ais = AIS(model, data=x[:MONITOR_ROWS], n_runs=a["n_runs"], n_betas=a["n_betas"], seed=seed, progress=False)
    chains = getattr(model.algorithm, "chains", None)
    log_z_rev = ais.run_reverse(v_init=chains, n_gibbs=a["reverse_gibbs"], data=x)
    return {"logZ_reverse": log_z_rev, "test_ll_reverse": test_ll - (log_z_rev - log_z_forward)}


def train(cfg: dict, out: str | os.PathLike, resume: bool = False, verbose: int = 2) -> dict:
    """Run (or resume) a config; returns the results dict (also in ``results.json``)."""
    from natural_bm.callbacks import (
        AISCallback,
        CSVLogger,
        LearningRateScheduler,
        MomentumRateScheduler,
        PeriodicSave,
        PlotCallback,
        SampleCallback,
        SummaryCallback,
        load_training_state,
    )
    from natural_bm.estimators import log_likelihood
    from natural_bm.training import pretrain_dbm

    out = Path(out)
    x, valid, test, shape = load_data(cfg)
    model = build_model(cfg, x.shape[1])
    t = cfg["training"]
    initial_epoch = 0
    if resume:
        last = _last_checkpoint(out)
        if last is None:
            raise FileNotFoundError(f"no checkpoint to resume from in {out / 'checkpoints'}.")
        model.load_weights(out / "checkpoints" / f"weights_epoch{last:04d}.pt")
        load_training_state(model, out / "checkpoints" / f"state_epoch{last:04d}.pt")
        _truncate_csv(out / "log.csv", last)
        initial_epoch = last + 1
    else:
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"results folder {out} is not empty; choose another or pass --resume.")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
        if hasattr(model, "init_from_data"):
            model.init_from_data(x)
        if cfg["model"]["type"] == "dbm" and t["pretrain_epochs"]:
            pretrain_dbm(model, x, epochs=t["pretrain_epochs"], batch_size=t["batch_size"], seed=cfg["seed"])
    last_epoch = t["epochs"] - 1
    a = cfg["ais"]
    ais = AISCallback(model, n_runs=a["n_runs"], n_betas=a["n_betas"], exact=a["exact"],
                      epoch_ls=a["epochs"] if a["epochs"] is not None else [last_epoch], seed=cfg["seed"])
    s = cfg["samples"]
    csv = out / "log.csv"
    callbacks = [
        CSVLogger(csv, append=resume),
        ais,
        SampleCallback(model, out / "samples.png", n_chains=s["n_chains"], n_samples=s["n_samples"],
                       plot_every=s["plot_every"], epoch_ls=[last_epoch],
                       image_shape=tuple(s["image_shape"] or shape), seed=cfg["seed"]),
        PlotCallback(out, csv),
        SummaryCallback(out, csv),
        PeriodicSave(out / "checkpoints" / "weights.pt", opt_path=out / "checkpoints" / "state.pt"),
        *(make_callback(entry) for entry in cfg["callbacks"]),
    ]
    for key, cls in (("lr", LearningRateScheduler), ("momentum", MomentumRateScheduler)):
        schedule = steps_of(cfg["schedule"][key], f"schedule.{key}")
        if schedule is not None:
            callbacks.append(cls(schedule))
    model.fit(x, batch_size=t["batch_size"], epochs=t["epochs"], validation_data=valid, callbacks=callbacks,
              verbose=verbose, initial_epoch=initial_epoch, seed=cfg["seed"])
    model.save(out / "model.pt")
    results: dict = {"epochs_run": t["epochs"]}
    if last_epoch in ais.results:
        z = ais.results[last_epoch]
        ll, se = log_likelihood(model, test, z["logZ"])
        results.update(logZ=z["logZ"], logZ_lo=z["logZ_lo"], logZ_hi=z["logZ_hi"], ais_ess=z["ais_ess"], test_ll=ll,
                       test_ll_stderr=se)
        if a["reverse"]:
            results.update(_reverse_ais(model, x, z["logZ"], ll, a, cfg["seed"] + last_epoch))
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results

