"""Placing parallel tempering's inverse temperatures for a target swap rate.

A swap between neighbouring rungs beta_a > beta_b is accepted with probability
min(1, exp((beta_a - beta_b) (E(x_a) - E(x_b)))). When the energy at each rung is roughly Gaussian with
standard deviation sigma (and so mean shifted by -sigma^2 per unit of beta), the log ratio is
N(-s^2, 2 s^2) with s = (beta_a - beta_b) sigma, and the mean acceptance is

    r = erfc(s / 2).

The gap's length d = 2 erfcinv(r) ~ integral of sigma(beta) dbeta (the thermodynamic length) adds up
along the ladder, whatever the rates. ``place_ladder`` takes a ladder with its measured rates, sums the
lengths of its gaps, and puts new rungs at equal steps of length, as many as bring the rate
erfc(step / 2) closest to the target, between the same ends (log beta interpolated linearly in length inside each old
gap): every neighbouring pair then swaps at about the target, and a pair that stalled (r near 0, a
long gap) gets rungs added inside it. Measuring again on the new ladder and placing again converges in
a few rounds (``ParallelTempering.tune``, and its ``adaptive`` mode during a run). Between fixed ends a
whole number of equal gaps cannot always meet a narrow band, so the adaptive ladder keeps every gap but
the hottest at the target's length, and the hottest (the rest of the length to ``min_beta``) at the
target or above. The rbms library of
Béreux, Decelle, Seoane et al. likewise aims its ladder at a swap rate of about 0.25.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["check_band", "gap_lengths", "gaps_for", "place_ladder"]

#: measured rates are clamped to [RATE_FLOOR, 1 - RATE_FLOOR] before their lengths are taken (a pair that
#: never swapped gets the length of rate 0.001, not an infinite one)
RATE_FLOOR = 1e-3


def check_band(target: float, band: tuple[float, float]) -> tuple[float, tuple[float, float]]:
    """(target, band) checked: 0 < band[0] <= target <= band[1] < 1."""
    try:
        lo, hi = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ValueError(f"`band` must be two swap rates (low, high), got {band!r}.") from None
    target = float(target)
    if not 0.0 < lo <= target <= hi < 1.0:
        raise ValueError(f"swap rates need 0 < band[0] <= target <= band[1] < 1, got target={target}, band={band}.")
    return target, (lo, hi)


def gap_lengths(rates: torch.Tensor) -> torch.Tensor:
    """The length 2 erfcinv(r) of each gap from its swap rate r (module docstring): (K - 1,) float64.
    Rates are clamped to [``RATE_FLOOR``, 1 - ``RATE_FLOOR``]."""
    r = torch.as_tensor(rates, dtype=torch.float64).clamp(RATE_FLOOR, 1.0 - RATE_FLOOR)
    return 2.0 * torch.erfinv(1.0 - r)


def gaps_for(length: float, target: float) -> int:
    """The number of equal gaps of a ladder of total ``length`` whose rate erfc(length / (2 n)) comes closest
    to ``target`` (at least 1)."""
    n = max(1.0, length / float(gap_lengths(torch.tensor([float(target)]))[0]))
    candidates = {max(1, math.floor(n)), max(1, math.ceil(n))}
    return min(candidates, key=lambda g: abs(math.erfc(length / (2 * g)) - target))


def place_ladder(betas, rates, target: float = 0.25, max_temperatures: int = 64,
                 min_beta: float | None = None) -> torch.Tensor:
    """A new ladder whose gaps have the length of the rate ``target`` (module docstring).

    Args:
        betas: (K,) decreasing inverse temperatures from 1 (the ladder the rates were measured on).
        rates: (K - 1,) measured swap rates of its neighbouring pairs; NaN (not measured) counts as
            ``target``.
        target: the swap rate each new pair should have (0 < target < 1).
        max_temperatures: the most rungs of the new ladder (a longer one is spread over this many rungs,
            at lower rates).
        min_beta: None: the new ladder keeps the ends 1 and ``betas[-1]`` and divides the length into the
            number of equal gaps whose rate is closest to ``target`` (``gaps_for``); a value: the ladder
            ends at ``min_beta`` and every gap but the last has the target's length exactly, the last one
            the rest (at most as long, so its rate is at least the target); the length past the measured
            ladder, if ``min_beta`` lies past it, extrapolated from its last gap.

    Returns:
        (K',) float64 from exactly 1, K' >= 2.
    """
    betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
    rates = torch.as_tensor(rates, dtype=torch.float64).flatten()
    if betas.ndim != 1 or len(betas) < 2 or float(betas[0]) != 1.0 or bool((betas[1:] >= betas[:-1]).any()) \
            or float(betas[-1]) <= 0:
        raise ValueError(f"`betas` must decrease from 1 to a value > 0 (at least two), got {betas.tolist()}.")
    if rates.shape != (len(betas) - 1,):
        raise ValueError(f"`rates` needs one swap rate per neighbouring pair ({len(betas) - 1}), got shape "
                         f"{tuple(rates.shape)}.")
    if not 0.0 < float(target) < 1.0:
        raise ValueError(f"`target` must be a swap rate in (0, 1), got {target!r}.")
    if int(max_temperatures) < 2:
        raise ValueError(f"`max_temperatures` must be at least 2, got {max_temperatures!r}.")
    if min_beta is not None and not 0.0 < float(min_beta) < 1.0:
        raise ValueError(f"`min_beta` must lie in (0, 1) or be None, got {min_beta!r}.")
    rates = torch.where(torch.isnan(rates), torch.full_like(rates, float(target)), rates)
    d = gap_lengths(rates).numpy()
    length = np.concatenate([[0.0], np.cumsum(d)])
    log_b = torch.log(betas).numpy()
    slope = (log_b[-1] - log_b[-2]) / d[-1]  # d log beta per unit length in the last gap (< 0)

    def log_beta_at(g):  # piecewise linear in length, extrapolated past the hottest rung
        g = np.asarray(g, dtype=np.float64)
        return np.where(g <= length[-1], np.interp(g, length, log_b), log_b[-1] + (g - length[-1]) * slope)

    if min_beta is None:
        gaps = min(gaps_for(float(length[-1]), target), int(max_temperatures) - 1)
        out = torch.from_numpy(np.exp(log_beta_at(np.linspace(0.0, length[-1], gaps + 1))))
        out[-1] = betas[-1]
    else:
        lm = math.log(float(min_beta))
        reach = float(np.interp(-lm, -log_b, length)) if lm >= log_b[-1] else length[-1] + (lm - log_b[-1]) / slope
        step = float(gap_lengths(torch.tensor([float(target)]))[0])
        gaps = max(1, math.ceil(reach / step - 1e-9))
        if gaps > int(max_temperatures) - 1:  # too long: spread over the most rungs
            gaps, step = int(max_temperatures) - 1, reach / (int(max_temperatures) - 1)
        out = torch.from_numpy(np.exp(log_beta_at(step * np.arange(gaps + 1))))
        out[-1] = float(min_beta)  # the last gap is the rest: at most one step long, its rate at least the target
    out[0] = 1.0
    return out
