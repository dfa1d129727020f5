"""The data of a run: its splits from the config's ``data`` section (and, for ``data.kind: standardized``, the
transform the training split defines, which scoring applies too), its labels, and the checks of the data
against the model that run before anything is written."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from natural_bm import DBN
from natural_bm.datasets import bars_and_stripes, load_array, load_digits, load_files, load_mnist
from natural_bm.io import first_line
from natural_bm.models.layered import LayeredBM
from natural_bm.models.units import Gaussian
from natural_bm.run.checkpoints import TRANSFORM_NAME, read_run_config
from natural_bm.run.config import read_config
from natural_bm.run.rules import ConfigError
from natural_bm.validation import warn_user

__all__ = ["DataTransform", "RunData", "check_data_fits_model", "data_description", "evaluation_data",
           "evaluation_transform", "load_data", "load_labels", "load_splits", "run_file_rows", "warn_if_unscaled"]

#: the loaders' kind for the kinds a run reads as real values (standardized: then transformed)
_LOADED_AS = {"real": "probability", "standardized": "probability"}


@dataclass(frozen=True)
class DataTransform:
    """``data.kind: standardized``: every column as (x - mean) / scale, with the training split's mean and
    standard deviation (scale 1 for a constant column, which stays at 0); the run applies it to every split,
    and scoring (``natural-bm logz``) to the rows it is given, from ``data_transform.json`` beside the model.

    Attributes:
        mean, scale: float64 arrays (n_columns,), in the data's units.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray) -> DataTransform:
        """The transform of the training rows ``train`` (n, n_columns)."""
        x = np.asarray(train, dtype=np.float64)
        sd = x.std(0)
        return cls(x.mean(0), np.where(sd > 0, sd, 1.0))

    def apply(self, rows) -> np.ndarray:
        """``rows`` (n, n_columns) transformed, as float32."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"the rows have shape {x.shape}, but the run standardised {len(self.mean)} columns.")
        return ((x - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {"kind": "standardized", "formula": "(x - mean) / scale, per column, from the training split",
                "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> DataTransform:
        if not isinstance(d, dict) or d.get("kind") != "standardized" or not {"mean", "scale"} <= set(d):
            raise ValueError("not a natural-bm data transform (kind 'standardized' with mean and scale).")
        mean, scale = np.asarray(d["mean"], dtype=np.float64), np.asarray(d["scale"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape or not (np.isfinite(mean).all() and (scale > 0).all()):
            raise ValueError("its mean and scale must be lists of one finite number per column (scale > 0).")
        return cls(mean, scale)

    def __eq__(self, other) -> bool:
        return isinstance(other, DataTransform) and np.array_equal(self.mean, other.mean) \
            and np.array_equal(self.scale, other.scale)

    __hash__ = None


@dataclass
class RunData:
    """The rows of a run: float32 arrays (n, n_visible), ``valid``/``test`` None where the data set has none,
    the (height, width) of one row as an image, and the transform applied (None but for standardized)."""

    train: np.ndarray
    valid: np.ndarray | None
    test: np.ndarray | None
    image_shape: tuple
    transform: DataTransform | None = None


def load_data(cfg: dict):
    """(train, valid, test, image shape) of a resolved config (``load_splits`` without the transform)."""
    data = load_splits(cfg)
    return data.train, data.valid, data.test, data.image_shape


def load_splits(cfg: dict) -> RunData:
    """The rows of a resolved config (``RunData``); standardized data is transformed with the training
    split's statistics."""
    data = _load(cfg)
    if cfg["data"]["kind"] == "standardized" and cfg["data"]["name"] == "files":  # (digits: by load_digits)
        t = DataTransform.fit(data.train)
        data = RunData(t.apply(data.train), None if data.valid is None else t.apply(data.valid),
                       None if data.test is None else t.apply(data.test), data.image_shape, t)
    return data


def _load(cfg: dict) -> RunData:
    d = cfg["data"]
    if d["name"] == "files":
        x, valid, test = _load_files(d, cfg["seed"])
        side = math.isqrt(x.shape[1])
        shape = (side, side) if side * side == x.shape[1] else (1, x.shape[1])
        return RunData(x, (valid if len(valid) else None), (test if len(test) else None), shape)
    if d["name"] == "digits":
        if d["kind"] == "stochastic":
            data, evaluation = load_digits("probability", cfg["seed"]), load_digits(d["eval_kind"], cfg["seed"])
            return RunData(data.train, evaluation.valid, evaluation.test, (8, 8))
        data = load_digits("probability" if d["kind"] == "real" else d["kind"], cfg["seed"])
        return RunData(data.train, data.valid, data.test, (8, 8))
    if d["name"] == "bars_and_stripes":
        # three independent draws from the known distribution: train, validation, test
        x = bars_and_stripes(d["n_samples"], d["size"], seed=cfg["seed"])
        valid = bars_and_stripes(max(1, d["n_samples"] // 5), d["size"], seed=cfg["seed"] + 1)
        test = bars_and_stripes(max(1, d["n_samples"] // 5), d["size"], seed=cfg["seed"] + 2)
        return RunData(x, valid, test, (d["size"], d["size"]))
    kind = "probability" if d["kind"] in ("stochastic", "real") else d["kind"]  # stochastic: binarised per minibatch
    data = load_mnist(kind, path=d["path"], n_train=d["n_train"], n_valid=d["n_valid"])
    evaluation = data if d["eval_kind"] == kind else load_mnist(d["eval_kind"], path=d["path"], n_train=d["n_train"],
                                                                n_valid=d["n_valid"])  # (MNIST's test rows: eval_kind)
    # the validation split is monitored as evaluated: once-sampled when training binarises per minibatch
    valid_split = evaluation.valid if d["kind"] == "stochastic" else data.valid
    valid = valid_split if len(valid_split) else None
    return RunData(np.ascontiguousarray(data.train), valid, evaluation.test, (28, 28))


def _load_files(d: dict, seed: int):
    """(train, valid, test) of ``data.name: files``; ConfigError naming the data key of a missing or bad file."""
    if d["train"] is None:
        raise ConfigError("data.name 'files' needs data.train, the path of a .npy, .npz or .csv file.")
    for split in ("train", "valid", "test"):
        if d[split] is not None and not Path(d[split]).is_file():
            raise ConfigError(f"data.{split}: no data file at {d[split]} (the path is relative to the directory "
                              f"natural-bm runs in).")
    stochastic = d["kind"] == "stochastic"
    kind = _LOADED_AS.get(d["kind"], d["kind"])
    try:
        return load_files(d["train"], d["valid"], d["test"], d["key"], d["valid_fraction"], d["test_fraction"],
                          "probability" if stochastic else kind, d["eval_kind"] if stochastic else kind, seed=seed)
    except ValueError as err:
        raise ConfigError(f"data (name 'files'): {first_line(err)}") from None


def load_labels(cfg: dict):
    """(train, valid, test) class labels (int arrays, aligned with ``load_data``'s rows) when
    ``data.labels`` is true, else None. MNIST and digits have labels (``resolve_config`` checks)."""
    d = cfg["data"]
    if not d["labels"]:
        return None
    if d["name"] == "mnist":
        data = load_mnist("probability", path=d["path"], n_train=d["n_train"], n_valid=d["n_valid"])
    else:
        data = load_digits("probability", cfg["seed"])
    return data.train_labels, data.valid_labels, data.test_labels


def evaluation_transform(run_folder: str | os.PathLike) -> DataTransform | None:
    """The transform a run applied to its rows (``data_transform.json`` in its results folder, written by
    runs with ``data.kind: standardized``), for scoring other rows as the run saw its own; None when the
    folder has none (the run used its data as it is).

    Raises:
        ValueError: the file is there but damaged or not a transform (one line naming it).
    """
    path = Path(run_folder) / TRANSFORM_NAME
    if not path.is_file():
        return None
    try:
        return DataTransform.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} cannot be read as the run's data transform ({first_line(err)}).") from None


def run_file_rows(path: str | os.PathLike, cfg: dict, run_folder: str | os.PathLike | None = None) -> np.ndarray:
    """The rows of a data file read as the run of ``cfg`` read its evaluation rows: the npz key of
    ``data.key``, the binarisation of its test rows, and the run's standardisation
    (``evaluation_transform(run_folder)``), float32 (n, n_columns)."""
    d = cfg["data"]
    kind = d["eval_kind"] if d["kind"] == "stochastic" else _LOADED_AS.get(d["kind"], d["kind"])
    rows = load_files(path, key=d["key"] if d["name"] == "files" else None, kind=kind, seed=cfg["seed"])[0]
    transform = None if run_folder is None else evaluation_transform(run_folder)
    return rows if transform is None else transform.apply(rows)


#: Gaussian visible units with a fixed sigma warn when the training columns' median sd is outside this factor
UNSCALED_FACTOR = 2.0


def warn_if_unscaled(model, x: np.ndarray) -> float | None:
    """Warn (one line, ``warn_user``) when the visible units are Gaussian with a fixed sigma and the training
    rows' columns spread far from it: the median over columns of sd / sigma (constant columns left out)
    above ``UNSCALED_FACTOR`` or below its inverse. Returns that median (None for other units)."""
    units = model.units[0] if isinstance(model, LayeredBM) else None
    if not isinstance(units, Gaussian) or units.learn_sigma:
        return None
    sd = np.asarray(x, dtype=np.float64).std(0)
    sigma = units.sigma.detach().cpu().double().numpy()
    varying = sd > 0
    if not varying.any():
        return None
    ratio = float(np.median(sd[varying] / sigma[varying]))
    if not 1 / UNSCALED_FACTOR <= ratio <= UNSCALED_FACTOR:
        warn_user(f"data: the training columns' standard deviation is {ratio:.3g} times the Gaussian visible units' "
                  f"fixed sigma (median over columns: sd {float(np.median(sd[varying])):.3g}, sigma "
                  f"{float(np.median(sigma)):.3g}); standardise the columns (data: {{kind: standardized}}) or learn "
                  f"sigma (model: {{units: [{{type: gaussian, learn_sigma: true}}, bernoulli]}}).")
    return ratio


def data_description(cfg: dict) -> dict:
    """What ``results.json`` records of the data a run was measured on: the data set, how its test rows
    were prepared, and for files their paths."""
    d = cfg["data"]
    test_kind = d["eval_kind"] if d["kind"] == "stochastic" else d["kind"]
    out = {"name": d["name"], "kind": d["kind"], "test_kind": test_kind}
    if d["kind"] == "standardized" and d["name"] == "files":
        out["transform"] = f"{TRANSFORM_NAME} (the training split's column means and scales)"
    if d["name"] == "files":
        out.update(train=d["train"], valid=d["valid"], test=d["test"])
    elif d["name"] == "bars_and_stripes":
        out.update(size=d["size"], n_samples=d["n_samples"])
    return out


def _fix_units(cfg: dict) -> str:
    m = cfg["model"]
    n_layers = len(m["layer_sizes"]) if m["type"] == "dbm" and m["layer_sizes"] else 2
    return "[" + ", ".join(["gaussian"] + ["bernoulli"] * (n_layers - 1)) + "]"


def check_data_fits_model(model, cfg: dict, splits: dict) -> None:
    """Refuse data the model cannot train on, in the config's words, before anything is written.

    Args:
        model: the built model (its ``n_visible`` and ``data_range``).
        cfg: the resolved config (named in the messages).
        splits: ``{"training": x, "validation": valid, "test": test}``; None entries are skipped.

    Raises:
        ConfigError: a split with the wrong number of columns, NaN or inf, or values outside the visible
            units' range; the message names the data key and, for real values, the ``model.units`` fix.
    """
    source = f"data.name {cfg['data']['name']!r}"
    for name, x in splits.items():
        if x is None:
            continue
        if x.shape[1] != model.n_visible:
            raise ConfigError(f"{source}: the {name} rows have {x.shape[1]} columns but the model has "
                              f"{model.n_visible} visible units.")
        if len(x) == 0:
            raise ConfigError(f"{source}: the {name} rows are empty (0 rows).")
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = "NaN" if math.isnan(lo) or math.isnan(hi) else "inf"
            raise ConfigError(f"{source}: the {name} rows contain {bad}; clean or drop those rows.")
        if isinstance(model, DBN):
            _check_dbn_rows(source, name, x, lo, hi)
            continue
        allowed = model.data_range
        if allowed is not None and (lo < allowed[0] or hi > allowed[1]):
            raise ConfigError(
                f"{source}: the {name} rows must lie in [{allowed[0]:g}, {allowed[1]:g}] for Bernoulli visible "
                f"units (model.units), got values in [{lo:g}, {hi:g}]; for real values give the visible layer "
                f"Gaussian units: model: {{units: {_fix_units(cfg)}}} (or rescale the data into [0, 1]).")


def _check_dbn_rows(source: str, name: str, x: np.ndarray, lo: float, hi: float) -> None:
    """A DBN's layers are binary: training rows in [0, 1], evaluation rows 0 or 1 (the bound needs them)."""
    if lo < 0 or hi > 1:
        raise ConfigError(f"{source}: the {name} rows must lie in [0, 1] for a DBN (its layers are binary units), "
                          f"got values in [{lo:g}, {hi:g}]; rescale the data into [0, 1].")
    if name != "training" and not np.isin(x, (0.0, 1.0)).all():
        raise ConfigError(f"{source}: the {name} rows must be binary (0 or 1) for a DBN's test figure, the "
                          f"variational bound; binarise them (data.kind sampled or threshold, or data.eval_kind "
                          f"with data.kind stochastic).")


def evaluation_data(data: str | None, model_path: str | Path, kind: str = "sampled") -> tuple[str, dict]:
    """(what the data is, ``{split: rows or None}``) for ``natural-bm logz``.

    Args:
        data: ``"mnist"`` (train, valid and test of ``kind``), ``"none"`` (no data: a uniform AIS base
            model and no log-likelihoods), a ``.npy``/``.npz``/``.csv`` file (its rows are reported as
            ``test``), a config file (``.json``/``.yaml``: its splits), or None: the ``config.json``
            beside the model (the run that wrote it), or else the ``<stem>_config.json`` beside a model
            file ``<stem>.pt`` (how the experiments ship their models: ``models/X.pt`` with
            ``models/X_config.json``), if there is one.
        model_path: the model file (for the config beside it).
        kind: the MNIST binarisation.

    Raises:
        ValueError: no data named and no config beside the model; nothing is guessed.
    """
    if data is None:
        model_path = Path(model_path)
        folder = model_path.parent
        if not (folder / "config.json").is_file():
            shipped = folder / f"{model_path.stem}_config.json"
            if not shipped.is_file():
                raise ValueError(f"name the data with --data (mnist, none, a .npy/.npz/.csv file or a config "
                                 f"file): no config.json or {shipped.name} beside {model_path} records what the "
                                 f"model was trained on.")
            return _config_file_splits(shipped, kind, f"{shipped.name} beside the model")
        try:
            cfg = read_run_config(folder)
        except ConfigError as err:
            raise ConfigError(f"name the data with --data: {folder / 'config.json'} beside the model is not a "
                              f"natural-bm train config ({err})") from None
        return _config_splits(cfg, kind, f"{cfg['data']['name']} (config.json beside the model)")
    if data == "none":
        return "none", {}
    if data == "mnist":
        d = load_mnist(kind)
        return f"mnist ({kind})", {"train": d.train, "valid": d.valid, "test": d.test}
    path = Path(data)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        return _config_file_splits(path, kind, str(path))
    return str(path), {"test": load_array(path)}


def _config_file_splits(path: Path, kind: str, where: str) -> tuple[str, dict]:
    """The splits of the config file ``path`` for logz, named by its data set and ``where`` it was found."""
    cfg = read_config(path)
    return _config_splits(cfg, kind, f"{cfg['data']['name']} ({where})")


def _config_splits(cfg: dict, kind: str, name: str) -> tuple[str, dict]:
    """A config's splits for logz; MNIST as ``--data mnist`` reads it (all splits of ``kind``)."""
    if cfg["data"]["name"] == "mnist":
        d = load_mnist(kind)
        return f"mnist ({kind})", {"train": d.train, "valid": d.valid, "test": d.test}
    x, valid, test, _ = load_data(cfg)
    return name, {"train": x, "valid": valid, "test": test}
