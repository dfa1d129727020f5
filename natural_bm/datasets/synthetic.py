"""Bars and stripes: a tiny data set with a known exact distribution.

On an ``size`` x ``size`` grid, a pattern is drawn by choosing rows (stripes)
or columns (bars) with probability 1/2 each, then switching each row (or
column) on with probability 1/2. There are 2^(size+1) - 2 distinct patterns:
the all-off and all-on images arise from both orientations and have
probability 2^-size each; every other pattern has probability 2^-(size+1).
"""

from __future__ import annotations

import itertools

import numpy as np


def bars_and_stripes_patterns(size: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """All distinct patterns (n_patterns, size*size) float32 and their probabilities."""
    if size < 2:
        raise ValueError(f"`size` must be >= 2, got {size}.")
    patterns: dict[bytes, float] = {}
    for on in itertools.product([0, 1], repeat=size):
        stripes = np.repeat(np.array(on, dtype=np.float32)[:, None], size, axis=1)
        for img in (stripes, stripes.T):
            key = img.astype(np.uint8).tobytes()
            patterns[key] = patterns.get(key, 0.0) + 0.5 * 0.5**size
    keys = sorted(patterns)
    x = np.stack([np.frombuffer(k, dtype=np.uint8).astype(np.float32) for k in keys])
    return x, np.array([patterns[k] for k in keys])


def bars_and_stripes(n_samples: int = 1000, size: int = 3, seed: int = 0) -> np.ndarray:
    """``n_samples`` i.i.d. draws from bars and stripes: (n_samples, size*size) float32."""
    x, p = bars_and_stripes_patterns(size)
    rng = np.random.default_rng(seed)
    return x[rng.choice(len(x), size=n_samples, p=p)]


def bars_and_stripes_log_likelihood(size: int = 3) -> float:
    """Best achievable mean log-likelihood (minus the entropy), nats per pattern."""
    _, p = bars_and_stripes_patterns(size)
    return float((p * np.log(p)).sum())
