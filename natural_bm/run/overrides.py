"""Command-line overrides (``natural-bm train CONFIG --set optimizer.lr=0.01``) and config differences.

An override is ``KEY=VALUE`` with ``KEY`` a dotted path (``optimizer.lr``, ``seed``, ``training.centering.rate``)
and ``VALUE`` read as YAML (``0.01``, ``true``, ``null``, ``[784, 500]``, ``{rate: 0.01}``). Overrides
are applied to the config file's mapping before it is resolved, so they are checked exactly as the file
is, with the same messages, and the run's ``config.json`` holds their values.

``config_changes`` lists what differs between two configs, key by key; ``RESUME_MAY_CHANGE`` is what a
resumed run may change (more epochs, the finishing AIS and samples, the threads): anything else would
continue a run under settings it did not start with.
"""

from __future__ import annotations

import copy

import yaml

from natural_bm.run.rules import ConfigError

__all__ = ["RESUME_MAY_CHANGE", "apply_overrides", "config_changes", "parse_override", "refused_on_resume"]

#: the dotted keys that ``--resume`` lets an override change (a trailing dot stands for every key of the section)
RESUME_MAY_CHANGE = ("training.epochs", "ais.", "samples.", "threads")


def parse_override(text: str) -> tuple[list[str], object]:
    """(``["optimizer", "lr"]``, ``0.01``) from ``"optimizer.lr=0.01"``.

    Raises:
        ConfigError: no ``=``, an empty key part, or a value that is not YAML.
    """
    path, sep, value = text.partition("=")
    parts = path.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {text!r}: write KEY=VALUE with KEY a dotted config key, e.g. "
                          f"--set optimizer.lr=0.01.")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"--set {path}: the value {value!r} is not YAML ({first}).") from None
    return [p.strip() for p in parts], parsed


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """A copy of the config mapping ``raw`` with each override set, in order (later ones win).

    Intermediate mappings are created where the path goes deeper than the file does; a path through a
    value that is not a mapping is refused naming the key.
    """
    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {'.'.join(parts)}: {where} is {child!r}, not a mapping, so it has no "
                                  f"key {parts[i + 1]!r}; set {where} itself.")
            node = child
        node[parts[-1]] = value
    return out


def config_changes(old: dict | None, new: dict, where: str = "") -> list[str]:
    """``"key: old -> new"`` for every dotted key whose value differs between two configs; [] when
    ``old`` is None (a checkpoint written before configs were stored in it)."""
    if old is None:
        return []
    out = []
    for name in sorted(set(old) | set(new), key=str):
        a, b, path = old.get(name), new.get(name), f"{where}{name}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, path + ".")
        elif a != b:
            out.append(f"{path}: {a!r} -> {b!r}")
    return out


def refused_on_resume(changes: list[str]) -> list[str]:
    """The changes (``config_changes`` lines) that a resumed run may not make (see ``RESUME_MAY_CHANGE``)."""
    def allowed(line: str) -> bool:
        path = line.split(":", 1)[0]
        return any(path == k or (k.endswith(".") and path.startswith(k)) for k in RESUME_MAY_CHANGE)

    return [line for line in changes if not allowed(line)]
