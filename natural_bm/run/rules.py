"""What a config value may be: one small rule per kind of value, each able to check and to describe itself.

A rule is called as ``rule(value, where)`` with ``where`` the key's dotted path (``"optimizer.lr"``); it
returns the value normalised (every number of the type the code expects) or raises ``ConfigError`` with
one line naming the key, the bad value and what is allowed. ``rule.allowed`` says the same in words for
``natural-bm train --help`` and the documentation's config reference.

Float keys also accept numeric strings, because YAML 1.1 (PyYAML) reads ``1e-3`` and ``1e9`` as strings
unless they hold a dot; integer keys accept neither floats (``epochs: 2.0``) nor strings (``epochs: "3"``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ConfigError", "Rule", "boolean", "centering", "choice", "describe_value", "int_list", "int_or_int_list",
           "integer", "mapping", "number", "optional", "passthrough", "sparsity", "text", "unit_list"]

#: the largest integer a config key may hold (a torch int64); sizes beyond it cannot be allocated anyway
INT_MAX = 2**63 - 1


class ConfigError(ValueError):
    """A config that cannot be run; the message says which key and what is valid."""


def describe_value(value) -> str:
    """A value as an error message quotes it: strings as ``the string '3'``, others with their type."""
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{value!r} ({type(value).__name__})"


def _literal(option) -> str:
    return ("true" if option else "false") if isinstance(option, bool) else repr(option)


def _range(lo, hi, strict_lo: bool = False, strict_hi: bool = False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if strict_lo else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if strict_hi else '<='} {hi:g}")
    return (" " + " and ".join(parts)) if parts else ""


@dataclass(frozen=True)
class Rule:
    """A check of one key's value (``check(value, where) -> value``) and its description in words."""

    check: Callable
    allowed: str

    def __call__(self, value, where: str):
        return self.check(value, where)


def integer(minimum: int | None = None, maximum: int | None = None) -> Rule:
    words = f"an integer{_range(minimum, maximum)}"
    cap = INT_MAX if maximum is None else maximum

    def check(value, where: str):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            digits = isinstance(value, str) and value.strip().lstrip("-").isdigit()
            hint = " (write it without quotes)" if digits else ""
            raise ConfigError(f"{where} must be {words}, got {describe_value(value)}{hint}.")
        value = int(value)
        if minimum is not None and value < minimum or value > cap:
            raise ConfigError(f"{where} must be an integer{_range(minimum, cap)}, got {value}." if value > cap
                              else f"{where} must be {words}, got {value}.")
        return value

    return Rule(check, words)


def number(minimum: float | None = None, maximum: float | None = None, strict_min: bool = False,
           strict_max: bool = False) -> Rule:
    bounds = _range(minimum, maximum, strict_min, strict_max)

    def check(value, where: str):
        original = value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number{bounds}, got {describe_value(original)}.") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{where} must be a number{bounds}, got {describe_value(original)}.")
        value = float(value)
        bad = not math.isfinite(value)
        if minimum is not None:
            bad |= value <= minimum if strict_min else value < minimum
        if maximum is not None:
            bad |= value >= maximum if strict_max else value > maximum
        if bad:
            raise ConfigError(f"{where} must be a finite number{bounds}, got {original!r}.")
        return value

    return Rule(check, f"a number{bounds}")


def _boolean(value, where: str):
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {describe_value(value)}.")
    return value


boolean = Rule(_boolean, "true or false")


def choice(*options) -> Rule:
    names = [_literal(o) for o in options]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    def check(value, where: str):
        if not any(value == o and isinstance(value, bool) == isinstance(o, bool) for o in options):
            raise ConfigError(f"{where} must be {listed}, got {describe_value(value)}.")
        return value

    return Rule(check, listed)


def _text(value, where: str):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {describe_value(value)}.")
    return value


text = Rule(_text, "a non-empty string")


def optional(rule: Rule) -> Rule:
    def check(value, where: str):
        return None if value is None else rule(value, where)

    return Rule(check, f"null or {rule.allowed}")


def int_list(minimum: int = 0, min_len: int = 0, length: int | None = None) -> Rule:
    item = integer(minimum)
    n = f"exactly {length}" if length is not None else f"at least {min_len}"

    def check(value, where: str):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list of integers >= {minimum}, got {describe_value(value)}.")
        if len(value) < min_len or (length is not None and len(value) != length):
            raise ConfigError(f"{where} must have {n} entries, got {len(value)}.")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

    return Rule(check, f"a list of {n} integers >= {minimum}")


def int_or_int_list(minimum: int = 0) -> Rule:
    item, items = integer(minimum), int_list(minimum, min_len=1)

    def check(value, where: str):
        return items(value, where) if isinstance(value, (list, tuple)) else item(value, where)

    return Rule(check, f"an integer >= {minimum}, or a list of them")


def _unit_list(value, where: str):
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(u, (str, dict)) for u in value):
        raise ConfigError(f"{where} must be a list of unit types, one per layer (e.g. [gaussian, bernoulli]), "
                          f"got {describe_value(value)}.")
    return list(value)


unit_list = Rule(_unit_list, "a list of unit types, one per layer: names or {type: gaussian, sigma: 0.5}")


def _mapping(value, where: str):
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {describe_value(value)}.")
    return value


mapping = Rule(_mapping, "a mapping")


def _centering(value, where: str):
    if value is True:
        return {}
    if value is False:
        return None
    if not isinstance(value, dict) or set(value) - {"rate", "target"}:
        raise ConfigError(f"{where} must be true or a mapping with keys rate and target (e.g. {{rate: 0.01, "
                          f"target: data}}), got {describe_value(value)}.")
    return dict(value)


centering = Rule(_centering, "true, or a mapping {rate: 0.01, target: data}")


def _sparsity(value, where: str):
    if value is False:
        return None
    if not isinstance(value, dict) or set(value) - {"target", "cost", "damping"} or "target" not in value:
        raise ConfigError(f"{where} must be a mapping with a target and optionally cost and damping (e.g. "
                          f"{{target: 0.1, cost: 0.001, damping: 0.9}}, or target: {{1: 0.2, 2: 0.1}} per layer), "
                          f"got {describe_value(value)}.")
    return dict(value)


sparsity = Rule(_sparsity, "a mapping {target: 0.1 (or {1: 0.2, 2: 0.1}), cost: 0.001, damping: 0.9}")


def passthrough(allowed: str) -> Rule:
    """A value checked elsewhere (schedules by ``schedules.steps_of``, callbacks by ``build.make_callback``)."""
    return Rule(lambda value, where: value, allowed)
