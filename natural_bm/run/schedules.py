"""The ``schedule`` and ``pretrain.schedule`` sections: a hyperparameter as a function of the epoch.

Three spellings (``steps_of``):

* steps ``[[first epoch, value], ...]``, piecewise constant from epoch 0;
* a stepped ramp ``{from: a, to: b, every: n}``, one unit from ``a`` towards ``b`` every ``n`` epochs;
* a continuous ramp ``{from: a, to: b, over: n, shape: linear|geometric}`` from ``a`` at epoch 0 to ``b``
  at epoch ``n`` and after (geometric: ``a (b/a)^(e/n)``, both ends > 0).

Every value must suit the key it schedules (``VALUES``: ``lr`` >= 0, ``momentum`` in [0, 1), ``k`` >= 1),
so a schedule that would stop a run in its middle is refused before the run starts.
"""

from __future__ import annotations

from collections.abc import Callable

from natural_bm.run.rules import ConfigError, integer, number

__all__ = ["SCHEDULED_KEYS", "VALUES", "schedules_of", "steps_of"]

#: the hyperparameters a schedule may set, and what each value must be
VALUES = {"lr": number(0), "momentum": number(0, 1, strict_max=True), "k": number(1)}
SCHEDULED_KEYS = tuple(VALUES)


def _value_rule(where: str):
    return VALUES.get(where.rsplit(".", 1)[-1], number(0))


def steps_of(spec, where: str) -> Callable[[int], float] | None:
    """A schedule as a function of the (0-based) epoch, or None for ``spec`` None.

    Args:
        spec: steps, a stepped ramp or a continuous ramp (see the module docstring).
        where: the key's dotted path, e.g. ``"schedule.k"``; its last part picks the value rule.

    Raises:
        ConfigError: one line naming ``where`` and what is wrong.
    """
    if spec is None:
        return None
    if isinstance(spec, dict) and "over" in spec:
        return _continuous_ramp(spec, where)
    if isinstance(spec, dict):
        return _stepped_ramp(spec, where)
    try:
        steps = sorted((int(e), float(v)) for e, v in spec)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a list of [first epoch, value] pairs, got {spec!r}.") from None
    if not steps or steps[0][0] != 0:
        raise ConfigError(f"{where} must start at epoch 0, got {spec!r}.")
    rule = _value_rule(where)
    for i, (_, v) in enumerate(steps):
        rule(v, f"{where}[{i}] value")

    def schedule(epoch: int) -> float:
        return [v for e, v in steps if e <= epoch][-1]

    return schedule


def _stepped_ramp(spec: dict, where: str):
    if set(spec) != {"from", "to", "every"}:
        raise ConfigError(f"{where} as a ramp must have the keys from, to and every (stepped) or from, to, "
                          f"over and optionally shape (continuous); got {sorted(spec, key=str)}.")
    rule = _value_rule(where)
    a, b = rule(spec["from"], f"{where}.from"), rule(spec["to"], f"{where}.to")
    every = integer(1)(spec["every"], f"{where}.every")
    sign = 1.0 if b >= a else -1.0

    def ramp(epoch: int) -> float:
        return a + sign * min(abs(b - a), epoch // every)

    return ramp


def _continuous_ramp(spec: dict, where: str):
    if not set(spec) <= {"from", "to", "over", "shape"} or not {"from", "to", "over"} <= set(spec):
        raise ConfigError(f"{where} as a continuous ramp must have the keys from, to, over and optionally shape; "
                          f"got {sorted(spec, key=str)}.")
    rule = _value_rule(where)
    a, b = rule(spec["from"], f"{where}.from"), rule(spec["to"], f"{where}.to")
    over = integer(1)(spec["over"], f"{where}.over")
    shape = spec.get("shape", "linear")
    if shape not in ("linear", "geometric"):
        raise ConfigError(f"{where}.shape must be 'linear' or 'geometric', got {shape!r}.")
    if shape == "geometric" and (a <= 0 or b <= 0):
        raise ConfigError(f"{where}: a geometric ramp needs from and to > 0, got {a} and {b}.")

    def ramp(epoch: int) -> float:
        f = min(1.0, epoch / over)
        return a * (b / a) ** f if shape == "geometric" else a + (b - a) * f

    return ramp


def schedules_of(section: dict | None, where: str) -> dict[str, Callable[[int], float] | None]:
    """``{lr, momentum, k: schedule or None}`` of a schedule section (``schedule``, ``pretrain.schedule``).

    Raises:
        ConfigError: an unknown key, or a bad schedule, named by its path.
    """
    section = section or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a mapping with keys among {list(SCHEDULED_KEYS)}, got {section!r}.")
    unknown = sorted(set(section) - set(SCHEDULED_KEYS), key=str)
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]}; valid keys: {sorted(SCHEDULED_KEYS)}.")
    return {key: steps_of(section.get(key), f"{where}.{key}") for key in SCHEDULED_KEYS}
