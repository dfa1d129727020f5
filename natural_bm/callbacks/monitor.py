"""Which direction is better for a log key (shared by summaries, checkpoints, early stopping)."""

from __future__ import annotations


def is_likelihood_key(key: str) -> bool:
    """Log-likelihood-like keys (``pll``, ``val_pll``, ``train_ll``, ``val_ll_exact``...): higher is better."""
    return bool({"ll", "pll"} & set(key.split("_")))


def infer_mode(key: str) -> str:
    """``'max'`` for log-likelihood keys and accuracies, ``'min'`` for losses and everything else."""
    if is_likelihood_key(key) or "acc" in key:
        return "max"
    return "min"


NO_BEST = ("logZ", "logZ_lo", "logZ_hi", "logZ_exact", "free_energy_gap", "lr", "momentum")
