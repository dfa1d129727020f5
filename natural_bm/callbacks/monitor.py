"""Which direction is better for a log key (shared by summaries, checkpoints, early stopping)."""
from __future__ import annotations

import math

from natural_bm.validation import warn_user


def is_likelihood_key(key: str) -> bool:
    """Log-likelihood-like keys (``pll``, ``val_pll``, ``train_ll``, ``val_ll_exact``...): higher is better."""
    return bool({"ll", "pll"} & set(key.split("_")))


def infer_mode(key: str) -> str:
    """``'max'`` for log-likelihood keys and accuracies, ``'min'`` for losses and everything else."""
    if is_likelihood_key(key) or "acc" in key:
        return "max"
    return "min"


NO_BEST = ("logZ", "logZ_lo", "logZ_hi", "logZ_exact", "ais_ess", "free_energy_gap", "lr", "momentum")


class Monitor:
    """Tracks the best value of a log key: ``mode`` 'min', 'max' or 'auto' (from the name).

    ``improved(current)`` is True when ``current`` beats the best by more than
    ``min_delta`` (lower for 'min', higher for 'max').
    """

    def __init__(self, key: str, mode: str = "auto", min_delta: float = 0.0, baseline: float | None = None) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"`mode` must be 'auto', 'min' or 'max', got {mode!r}.")
        self.key = key
        self.mode = infer_mode(key) if mode == "auto" else mode
        self.min_delta = abs(float(min_delta))
        self.baseline = baseline
        self.reset()

    def reset(self) -> None:
        if self.baseline is not None:
            self.best = float(self.baseline)
        else:
            self.best = float("inf") if self.mode == "min" else float("-inf")

    def state_dict(self) -> dict:
        return {"best": float(self.best)}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])

    def improved(self, current: float) -> bool:
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def value(self, logs: dict | None):
        """The monitored value from ``logs``, or None (with a warning) when absent or NaN."""
        v = (logs or {}).get(self.key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            warn_user(f"monitored key {self.key!r} is not available in the logs (keys: {sorted(logs or {})}).",
                          RuntimeWarning)
            return None
        return float(v)
