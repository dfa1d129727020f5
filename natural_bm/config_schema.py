"""The keys of a ``natural-bm train`` config, their types and ranges.

``check_config`` validates a whole config (defaults filled in) before
anything is written, and returns it normalised: every number of the type the
code expects. Each error is a ``ConfigError`` whose one-line message names
the key and what it must be.

Float keys also accept numeric strings, because YAML 1.1 (PyYAML) reads
``1e-3`` and ``1e9`` as strings unless they hold a dot; integer keys do not
accept floats (``epochs: 2.0``) or strings (``epochs: "3"``).
"""

from __future__ import annotations

import math
import numbers


class ConfigError(ValueError):
    """A config that cannot be run; the message says which key and what is valid."""


def _describe(value) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{value!r} ({type(value).__name__})"


def integer(minimum: int | None = None, maximum: int | None = None):
    def check(value, where: str):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            hint = " (write it without quotes)" if isinstance(value, str) and value.strip().lstrip("-").isdigit() \
                else ""
            raise ConfigError(f"{where} must be an integer{_range(minimum, maximum)}, got {_describe(value)}{hint}.")
        value = int(value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(f"{where} must be an integer{_range(minimum, maximum)}, got {value}.")
        return value
    return check


def number(minimum: float | None = None, maximum: float | None = None, strict_min: bool = False,
           strict_max: bool = False):
    def check(value, where: str):
        original = value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number{_range(minimum, maximum, strict_min, strict_max)}, "
                                  f"got {_describe(original)}.") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{where} must be a number{_range(minimum, maximum, strict_min, strict_max)}, "
                              f"got {_describe(original)}.")
        value = float(value)
        bad = not math.isfinite(value)
        if minimum is not None:
            bad |= value <= minimum if strict_min else value < minimum
        if maximum is not None:
            bad |= value >= maximum if strict_max else value > maximum
        if bad:
            raise ConfigError(f"{where} must be a finite number{_range(minimum, maximum, strict_min, strict_max)}, "
                              f"got {original!r}.")
        return value
    return check


def _range(lo, hi, strict_lo: bool = False, strict_hi: bool = False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if strict_lo else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if strict_hi else '<='} {hi:g}")
    return (" " + " and ".join(parts)) if parts else ""


def boolean(value, where: str):
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {_describe(value)}.")
    return value


def _literal(option) -> str:
    return ("true" if option else "false") if isinstance(option, bool) else repr(option)


def choice(*options):
    names = [_literal(o) for o in options]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    def check(value, where: str):
        if not any(value == o and isinstance(value, bool) == isinstance(o, bool) for o in options):
            raise ConfigError(f"{where} must be {listed}, got {_describe(value)}.")
        return value
    return check


def text(value, where: str):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {_describe(value)}.")
    return value


def optional(check):
    def wrapped(value, where: str):
        return None if value is None else check(value, where)
    return wrapped


def int_list(minimum: int = 0, min_len: int = 0, length: int | None = None):
    item = integer(minimum)

    def check(value, where: str):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list of integers >= {minimum}, got {_describe(value)}.")
        if len(value) < min_len or (length is not None and len(value) != length):
            n = f"exactly {length}" if length is not None else f"at least {min_len}"
            raise ConfigError(f"{where} must have {n} entries, got {len(value)}.")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return check


def int_or_int_list(minimum: int = 0):
    item, items = integer(minimum), int_list(minimum, min_len=1)

    def check(value, where: str):
        return items(value, where) if isinstance(value, (list, tuple)) else item(value, where)
    return check


def unit_list(value, where: str):
    """One unit type per layer: names ("bernoulli", "gaussian") or mappings such as {type: gaussian, sigma: 0.5}."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(u, (str, dict)) for u in value):
        raise ConfigError(f"{where} must be a list of unit types, one per layer (e.g. [gaussian, bernoulli]), "
                          f"got {_describe(value)}.")
    return list(value)


def mapping(value, where: str):
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {_describe(value)}.")
    return value


def centering(value, where: str):
    """true, or a mapping {rate: 0.01, target: data} (natural_bm.training.centering.Centering)."""
    if value is True:
        return {}
    if value is False:
        return None
    if not isinstance(value, dict) or set(value) - {"rate", "target"}:
        raise ConfigError(f"{where} must be true or a mapping with keys rate and target (e.g. {{rate: 0.01, "
                          f"target: data}}), got {_describe(value)}.")
    return dict(value)


def sparsity(value, where: str):
    """A mapping {target: 0.1 or {layer: target}, cost: 1e-3, damping: 0.9}
    (natural_bm.training.sparsity.Sparsity)."""
    if value is False:
        return None
    if not isinstance(value, dict) or set(value) - {"target", "cost", "damping"} or "target" not in value:
        raise ConfigError(f"{where} must be a mapping with a target and optionally cost and damping (e.g. "
                          f"{{target: 0.1, cost: 0.001, damping: 0.9}}, or target: {{1: 0.2, 2: 0.1}} per layer), "
                          f"got {_describe(value)}.")
    return dict(value)


def passthrough(value, where: str):
    """Checked elsewhere (schedules by ``steps_of``, callbacks by ``make_callback``)."""
    return value


SCHEMA: dict = {
    "model": {
        "type": choice("rbm", "dbm"), "n_hidden": integer(1), "layer_sizes": optional(int_list(1, min_len=2)),
        "units": optional(unit_list),
        "topology": optional(mapping), "init": choice("gaussian", "orthogonal"),
        "weight_scale": number(0, strict_min=True), "init_from": optional(text),
    },
    "data": {
        "name": choice("mnist", "bars_and_stripes", "files", "digits"),
        "kind": choice("probability", "sampled", "threshold", "stochastic", "standardized"),
        "n_train": integer(1), "n_valid": integer(0), "eval_kind": choice("probability", "sampled", "threshold"),
        "size": integer(2), "n_samples": integer(1), "path": optional(text), "train": optional(text),
        "valid": optional(text), "test": optional(text), "key": optional(text),
        "valid_fraction": number(0, 1, strict_max=True), "test_fraction": number(0, 1, strict_max=True),
        "labels": boolean,
    },
    "training": {
        "algorithm": choice("cd", "pcd", "exact", "mfpcd", "pt"), "k": integer(1), "n_chains": integer(1),
        "n_temperatures": integer(2), "min_beta": number(0, 1, strict_min=True, strict_max=True),
        "epochs": integer(1), "batch_size": integer(1), "l1": number(0), "l2": number(0),
        "mf_steps": integer(1), "jit_compile": choice(True, False, "auto"),
        "cuda_graph": choice(True, False), "centering": optional(centering),
        "max_norm": optional(number(0, strict_min=True)), "sparsity": optional(sparsity),
        "keep_checkpoints": optional(integer(1)), "best_checkpoint": optional(text),
    },
    "pretrain": {
        "epochs": int_or_int_list(0), "algorithm": choice("cd", "pcd"), "k": integer(1), "n_chains": integer(1),
        "lr": number(0, strict_min=True), "momentum": number(0, 1, strict_max=True), "decay": number(0),
        "decay_mode": choice("inverse", "exponential"), "l2": number(0),
        "max_norm": optional(number(0, strict_min=True)), "schedule": optional(mapping),
    },
    "optimizer": {
        "name": choice("sgd", "adam"), "lr": number(0, strict_min=True), "momentum": number(0, 1, strict_max=True),
        "nesterov": boolean, "decay": number(0), "decay_mode": choice("inverse", "exponential"),
        "beta_1": number(0, 1, strict_max=True),
        "beta_2": number(0, 1, strict_max=True), "epsilon": number(0, strict_min=True),
    },
    "ais": {
        "n_runs": integer(2), "n_betas": optional(integer(2)), "epochs": optional(int_list(0)), "exact": boolean,
        "reverse": boolean, "reverse_gibbs": integer(0), "parity": choice("auto", 0, 1),
        "importance_samples": optional(integer(1)),
    },
    "samples": {
        "n_chains": integer(1), "n_samples": integer(1), "plot_every": integer(1),
        "image_shape": optional(int_list(1, length=2)),
    },
    "schedule": {"lr": passthrough, "momentum": passthrough, "k": passthrough},
    "callbacks": passthrough,
    "seed": integer(0, 2**63 - 1),
    "device": text,
}


def check_config(cfg: dict) -> dict:
    """Check every key of ``cfg`` (defaults filled in) against ``SCHEMA``; returns the normalised config."""
    out = {}
    for key, rule in SCHEMA.items():
        value = cfg[key]
        if isinstance(rule, dict):
            out[key] = {sub: rule[sub](value[sub], f"{key}.{sub}") for sub in rule}
        else:
            out[key] = rule(value, key)
    return out


_VALUE_RULES = {"number": number(0), "positive_int": integer(1)}


def check_config_value(value, where: str, kind: str):
    """One value checked as ``kind`` ('number': finite >= 0, 'positive_int': integer >= 1)."""
    return _VALUE_RULES[kind](value, where)
