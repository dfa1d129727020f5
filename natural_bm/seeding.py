"""Seeds that make runs reproducible.

natural_bm never touches the global torch RNG inside ``fit``: every run owns a
:class:`natural_bm.rng.RandomSource`. For epoch ``e`` of a run with seed
``s`` the source is re-seeded with :func:`epoch_seed` ``(s, e)``, so a run
resumed at epoch ``e`` (from a checkpoint holding weights, optimiser state
and persistent chains) draws exactly the numbers an uninterrupted run would
have drawn.
"""

from __future__ import annotations

import os


def new_seed() -> int:
    """A fresh non-negative 62-bit seed from the OS entropy pool."""
    return int.from_bytes(os.urandom(8), "little") >> 2


def epoch_seed(seed: int, epoch: int) -> int:
    """Deterministic 63-bit seed for ``epoch`` of a run seeded with ``seed`` (epoch -1: set-up)."""
    return (int(seed) * 0x9E3779B97F4A7C15 + (int(epoch) + 2) * 0xBF58476D1CE4E5B9) % (2**63 - 1)
