"""The keys a run's log will hold, known before training: the best checkpoint's key chosen
(``training.best_checkpoint: auto``) and every monitored key checked, so that a run never trains for hours
judging a key it does not log.

The keys come from the fit loop (``natural_bm.training.fit``: ``loss``, ``pll``, the ``val_*`` keys with
validation data), the run's log Z estimates (``natural_bm.run.estimates``), the schedules and the
algorithm; a run whose callbacks or algorithm add keys of their own (a user's callback, ``OptimizerSpy``,
parallel tempering's swap rates) may log more, so only keys that cannot be there are refused then.
"""

from __future__ import annotations

import inspect

from natural_bm.models.base import BoltzmannMachine
from natural_bm.run.config import CONFIG_CALLBACKS, callback_class
from natural_bm.run.estimates import LogZPlan
from natural_bm.run.rules import ConfigError
from natural_bm.run.schedules import schedules_of

__all__ = ["BEST_CHECKPOINT_ORDER", "check_monitored_keys", "logged_keys", "resolve_best_checkpoint"]

#: the keys that ``training.best_checkpoint`` set to auto tries in turn (the first the run logs every epoch)
BEST_CHECKPOINT_ORDER = ("val_pll", "val_ll_exact", "val_loss")
#: natural_bm callbacks of a config whose log keys are not fixed in advance
_OPEN_ENDED = ("OptimizerSpy",)


def logged_keys(cfg: dict, model: BoltzmannMachine, has_valid: bool, plan: LogZPlan) -> tuple[set[str], set[str]]:
    """(the keys the run logs every epoch, the keys it logs at some epochs only), for a resolved config, its
    built model (RBM or DBM), whether it has validation rows, and its log Z plan."""
    every = {"loss"} | ({"pll"} if model.binary_visible else set())
    if has_valid:
        every |= {"val_loss", "free_energy_gap"} | ({"val_pll"} if model.binary_visible else set())
        if cfg["data"]["labels"]:
            every.add("val_accuracy")
    some = set()
    ais_every = cfg["ais"]["epochs"] is not None and set(cfg["ais"]["epochs"]) >= set(range(cfg["training"]["epochs"]))
    if plan.ais:
        keys = {"logZ", "logZ_lo", "logZ_hi", "ais_ess", "train_ll"} | ({"val_ll"} if has_valid else set())
        if plan.exact:
            keys |= {"logZ_exact", "train_ll_exact"} | ({"val_ll_exact"} if has_valid else set())
        (every if ais_every else some).update(keys)
    else:
        keys = {"logZ_exact", "train_ll_exact"} | ({"val_ll_exact"} if has_valid else set())
        (every if plan.exact_every_epoch else some).update(keys)
    for key, fn in schedules_of(cfg["schedule"], "schedule").items():
        if fn is not None:
            every.add(key)
    if any(entry["name"] in ("ReduceLROnPlateau", "CyclicLR") for entry in cfg["callbacks"]):
        every.add("lr")
    return every, some


def _open_ended(cfg: dict) -> bool:
    """Whether the run may log keys ``logged_keys`` cannot know (a user's callback, OptimizerSpy, tempering)."""
    names = [entry["name"] for entry in cfg["callbacks"]]
    return cfg["training"]["algorithm"] == "pt" or any(n in _OPEN_ENDED or n not in CONFIG_CALLBACKS for n in names)


def _missing(key: str, cfg: dict, model, has_valid: bool, plan: LogZPlan, what: str, listed: set[str]) -> str | None:
    """Why ``key`` is never logged by the run, with the fix in config words; None when it may be."""
    if key.startswith("val_") and not has_valid:
        return (f"{what} monitors {key!r}, which needs validation rows, and this run has none: pass "
                f"{_valid_fix(cfg)}")
    if key in ("pll", "val_pll") and not model.binary_visible:
        return (f"{what} monitors {key!r}, but the pseudo-likelihood flips binary units and these visible units "
                f"are real-valued; monitor 'val_loss' (or 'val_ll_exact' with ais.exact for small models)")
    if key.endswith("_exact") and key in {"logZ_exact", "train_ll_exact", "val_ll_exact"} and not plan.exact:
        return (f"{what} monitors {key!r}, but this run does not enumerate log Z "
                f"({'ais.exact is false' if cfg['ais']['exact'] is False else 'the model has too many states'}); "
                f"set ais.exact: auto or true, or monitor another key")
    if key in listed or _open_ended(cfg):
        return None
    return f"{what} monitors {key!r}, which this run never logs; it logs {sorted(listed)}"


def _valid_fix(cfg: dict) -> str:
    name = cfg["data"]["name"]
    if name == "mnist":
        return "data.n_valid > 0 (MNIST rows held out of data.n_train)"
    if name == "files":
        return "data.valid (a file) or data.valid_fraction > 0 (training rows held out)"
    return "validation data"


def check_monitored_keys(cfg: dict, model: BoltzmannMachine, has_valid: bool, plan: LogZPlan,
                         check_best: bool = True) -> None:
    """Refuse, before training, a monitored key the run never logs: the ``monitor`` of each callback that
    takes one (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, a user's class with a ``monitor``
    argument; its default when the config gives none) and, with ``check_best``, ``training.best_checkpoint``.

    Raises:
        ConfigError: one line naming the key, the callback, and the data or setting that would log it.
    """
    every, some = logged_keys(cfg, model, has_valid, plan)
    listed = every | some
    for i, entry in enumerate(cfg["callbacks"]):
        cls = callback_class(entry["name"])
        try:
            parameter = inspect.signature(cls).parameters.get("monitor")
        except (TypeError, ValueError):
            parameter = None
        if parameter is None:
            continue
        key = (entry.get("args") or {}).get("monitor", parameter.default)
        if not isinstance(key, str):
            continue
        why = _missing(key, cfg, model, has_valid, plan, f"callbacks[{i}] ({entry['name']})", listed)
        if why:
            raise ConfigError(why + ".")
    best = cfg["training"]["best_checkpoint"]
    if check_best and best not in (None, "auto"):
        why = _missing(best, cfg, model, has_valid, plan, "training.best_checkpoint", listed)
        if why:
            raise ConfigError(why + " (or set training.best_checkpoint: auto, or null for none).")


def resolve_best_checkpoint(cfg: dict, model: BoltzmannMachine, has_valid: bool, plan: LogZPlan) -> tuple[str | None,
                                                                                                            str]:
    """(the key of ``training.best_checkpoint: auto``, one line saying the choice): the first of
    ``BEST_CHECKPOINT_ORDER`` the run logs every epoch, or None (no best checkpoint) without one."""
    every, _ = logged_keys(cfg, model, has_valid, plan)
    for key in BEST_CHECKPOINT_ORDER:
        if key in every:
            skipped = [k for k in BEST_CHECKPOINT_ORDER[: BEST_CHECKPOINT_ORDER.index(key)]]
            why = f" ({', '.join(skipped)} not logged)" if skipped else ""
            return key, f"the best epoch's checkpoint is kept by {key}{why} (training.best_checkpoint: auto)"
    fix = "" if has_valid else f"; pass {_valid_fix(cfg)} for one"
    return None, f"no best checkpoint: the run logs none of {list(BEST_CHECKPOINT_ORDER)} every epoch{fix}"
