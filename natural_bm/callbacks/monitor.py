"""Which direction is better for a log key, and the best value so far (shared by summaries, checkpoints,
early stopping and learning-rate plateaus).

How noisy the monitored keys are
--------------------------------
``pll`` and ``val_pll`` are stochastic: the pseudo-log-likelihood of a row is estimated from one visible
unit drawn at random (``BoltzmannMachine.pseudo_log_likelihood``: n_visible * log sigmoid(F(v~) - F(v)),
v~ the row with that unit flipped), so an epoch's value over n_rows rows has a standard error of about

    n_visible * sd / sqrt(n_rows),

sd the standard deviation, over rows, of the flipped unit's term log sigmoid(F(v~) - F(v)) (the
standard deviation of one epoch's per-row values, divided by n_visible). The error does not shrink as
the model trains, and with hundreds of visible units and a few hundred validation rows it is several
nats: larger than what an epoch adds late in training. Measure sd on your model (the spread of
``model.pseudo_log_likelihood(valid) / n_visible``) and compare one epoch's value with another's only in
units of that error. ``val_loss`` (a reconstruction
cross-entropy from a sampled hidden state) is stochastic too, less so. Keys without sampling noise:
``val_ll_exact`` (``ExactLikelihoodCallback``, models with at most 2^20 states to enumerate) and
``val_ll_trajectory`` (``TrajectoryAISCallback``: smooth between epochs, though it may drift).
``Monitor(smoothing=k)`` judges the mean of the last k values instead, which divides independent noise
by about sqrt(k) at the cost of a lag of (k - 1) / 2 epochs (and no judgement in the first k - 1).
"""
from __future__ import annotations

import math

from natural_bm.validation import check_positive_int, warn_user


def is_likelihood_key(key: str) -> bool:
    """Log-likelihood-like keys (``pll``, ``val_pll``, ``train_ll``, ``val_ll_exact``...): higher is better."""
    return bool({"ll", "pll"} & set(key.split("_")))


def infer_mode(key: str) -> str:
    """``'max'`` for log-likelihood keys and accuracies, ``'min'`` for losses and everything else."""
    if is_likelihood_key(key) or "acc" in key:
        return "max"
    return "min"


NO_BEST = ("logZ", "logZ_lo", "logZ_hi", "logZ_exact", "ais_ess", "free_energy_gap", "lr", "momentum")

#: the callbacks that add log keys of their own, by key
KEY_SOURCES = {
    "val_ll_exact": "ExactLikelihoodCallback (or AISCallback(exact=True))",
    "train_ll_exact": "ExactLikelihoodCallback (or AISCallback(exact=True))",
    "val_ll": "AISCallback",
    "train_ll": "AISCallback",
    "val_ll_trajectory": "TrajectoryAISCallback",
    "train_ll_trajectory": "TrajectoryAISCallback",
}


def missing_key_hint(key: str, logs: dict) -> str:
    """What to do when the monitored ``key`` is not in the epoch ``logs``: which data or callback adds it."""
    source = KEY_SOURCES.get(key)
    if key.startswith("val_") and "val_loss" not in logs:
        fix = ("validation keys need validation data: fit(..., validation_data=x_valid), or in a config "
               "data.valid or data.valid_fraction (files), data.n_valid (mnist)")
        return fix + (f", and {source} to add {key!r}" if source else "")
    if key in ("val_pll", "pll") and "val_loss" in logs:
        return ("the pseudo-likelihood flips binary units, and these visible units are real-valued: monitor "
                "'val_loss', or 'val_ll_exact' with ExactLikelihoodCallback")
    if source:
        return f"{key!r} is added by {source}: add it to the callbacks"
    return "check the spelling, or add the callback that logs it"


class Monitor:
    """Tracks the best value of a log key: ``mode`` 'min', 'max' or 'auto' (from the name).

    ``improved(current)`` is True when ``current`` beats the best by more than ``min_delta`` (lower for
    'min', higher for 'max'). ``observe(logs)`` gives the value to judge at an epoch: the key's value, or
    with ``smoothing`` = k > 1 the mean of its last k values (epochs where it is NaN skipped; None until k
    values have been seen, so that one lucky early draw does not set the best), which tames stochastic
    keys such as ``val_pll`` (the module docstring gives their error).
    The values it holds go through ``state_dict``, so a resumed run judges as the uninterrupted one.
    """

    def __init__(self, key: str, mode: str = "auto", min_delta: float = 0.0, baseline: float | None = None,
                 smoothing: int = 1) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"`mode` must be 'auto', 'min' or 'max', got {mode!r}.")
        self.key = key
        self.mode = infer_mode(key) if mode == "auto" else mode
        self.min_delta = abs(float(min_delta))
        self.baseline = baseline
        self.smoothing = check_positive_int(smoothing, "smoothing")
        self.reset()

    def reset(self) -> None:
        if self.baseline is not None:
            self.best = float(self.baseline)
        else:
            self.best = float("inf") if self.mode == "min" else float("-inf")
        self.recent: list[float] = []

    def state_dict(self) -> dict:
        return {"best": float(self.best), "recent": list(self.recent)}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.recent = [float(v) for v in state.get("recent", [])]  # checkpoints from before smoothing: none

    def improved(self, current: float) -> bool:
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def describe(self) -> str:
        """The judged quantity in words: ``'val_pll'`` or ``'the mean of the last 5 val_pll'``."""
        return self.key if self.smoothing == 1 else f"the mean of the last {self.smoothing} {self.key}"

    def value(self, logs: dict | None):
        """The monitored value from ``logs``, or None (with a warning saying what to do) when absent or NaN."""
        logs = logs or {}
        v = logs.get(self.key)
        if v is None:
            warn_user(f"monitored key {self.key!r} is not in the logs (keys: {sorted(logs)}); "
                      f"{missing_key_hint(self.key, logs)}.", RuntimeWarning)
            return None
        if isinstance(v, float) and math.isnan(v):
            warn_user(f"monitored key {self.key!r} is NaN at this epoch (logged only at some epochs, or not "
                      f"computable); this epoch is not judged.", RuntimeWarning)
            return None
        return float(v)

    def observe(self, logs: dict | None):
        """The value to judge at this epoch (see the class docstring), or None when the key is missing or NaN."""
        v = self.value(logs)
        if v is None or self.smoothing == 1:
            return v
        self.recent = (self.recent + [v])[-self.smoothing :]
        return sum(self.recent) / self.smoothing if len(self.recent) == self.smoothing else None
