"""What AIS's importance weights say: log mean weight with its error band, effective sample size, and a
warning when a few runs carry the estimate."""

from __future__ import annotations

import math

import torch

from natural_bm.validation import warn_user


def log_mean_exp_band(log_w: torch.Tensor, n_sigma: float = 3.0) -> tuple[float, float, float]:
    """log mean(w), log(mean(w) - n_sigma se), log(mean(w) + n_sigma se) from log weights.

    The standard error is that of the weights themselves, std(w) / sqrt(n),
    as in Salakhutdinov & Murray (2008); the band is not symmetric in log
    space and its lower end is -inf when mean(w) - n_sigma se <= 0.
    """
    lw = log_w.double().cpu()
    m = float(lw.max())
    w = torch.exp(lw - m)
    mean = float(w.mean())
    se = float(w.std(unbiased=True)) / math.sqrt(len(w)) if len(w) > 1 else 0.0
    lo = mean - n_sigma * se
    return (
        m + math.log(mean),
        m + math.log(lo) if lo > 0 else -math.inf,
        m + math.log(mean + n_sigma * se),
    )


def effective_sample_size(log_w: torch.Tensor) -> float:
    """Kish's effective sample size of importance weights given as logs: (sum w)^2 / sum w^2.

    Between 1 (one run carries all the weight) and ``len(log_w)`` (equal
    weights). With 100 runs, the -3 sigma band of ``log_mean_exp_band``
    reaches zero weight (its lower end is -inf) once this falls to about 8.
    """
    lw = torch.as_tensor(log_w).double().cpu()
    if lw.ndim != 1 or lw.numel() == 0:
        raise ValueError(f"`log_w` must be a non-empty 1-D tensor of log weights, got shape {tuple(lw.shape)}.")
    if bool(torch.isnan(lw).any()) or bool((lw == math.inf).any()):
        raise ValueError("`log_w` contains NaN or +inf; log weights must be finite or -inf (zero weight).")
    return float(torch.exp(2 * torch.logsumexp(lw, 0) - torch.logsumexp(2 * lw, 0)))


#: below this effective sample size (and half the runs) an AIS estimate comes with a warning
MIN_EFFECTIVE_SAMPLE_SIZE = 10.0


def warn_if_unreliable(log_w: torch.Tensor, direction: str) -> float:
    """Warn when a few runs carry the estimate; returns the effective sample size."""
    ess = effective_sample_size(log_w)
    n = len(log_w)
    if ess < min(MIN_EFFECTIVE_SAMPLE_SIZE, n / 2):
        bias = ("too low (test log-likelihoods too good)" if direction == "forward"
                else "too high (test log-likelihoods too pessimistic)")
        warn_user(
            f"{direction} AIS: {ess:.1f} effective runs of {n} carry the estimate, so its error band is not "
            f"trustworthy and log Z is likely {bias}. Anneal with more betas (n_betas) or runs (n_runs), and "
            "compare forward and reverse AIS (AIS.estimate_bracket).",
            RuntimeWarning
        )
    return ess
