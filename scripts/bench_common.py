"""What the benchmark scripts share: interleaved timing rounds and the median table."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def interleaved(contestants: dict[str, Callable[[int], float]], repeats: int, unit: str = "s",
                digits: int = 2) -> dict[str, list[float]]:
    """Call every contestant once per round (A, B, C, A, B, C, ...: the machines are shared and noisy,
    so each round sees the same conditions), ``repeats`` rounds; each call gets the round index and
    returns its time. Prints each round; returns {name: [times]}."""
    times: dict[str, list[float]] = {k: [] for k in contestants}
    for r in range(repeats):
        for name, fn in contestants.items():
            times[name].append(fn(r))
        print(f"round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.{digits}f} {unit}" for k, v in times.items()),
              flush=True)
    return times


def median_rows(times: dict[str, list[float]], last_column: Callable[[float], str], digits: int = 3) -> list[str]:
    """One markdown row per contestant: name, median, min, and ``last_column(median)``."""
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(f"| {name} | {med:.{digits}f} | {min(ts):.{digits}f} | {last_column(med)} |")
    return rows
