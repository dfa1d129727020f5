"""Algorithms by name: ``get_algorithm("pcd", k=1, n_chains=100)``."""

from __future__ import annotations

import difflib
import inspect

from natural_bm.training.algorithms import (
    Algorithm,
    ContrastiveDivergence,
    ExactGradient,
    MeanFieldPersistent,
    PersistentContrastiveDivergence,
)
from natural_bm.training.tempering import ParallelTemperingAlgorithm

__all__ = ["ALGORITHMS", "get_algorithm"]

ALGORITHMS = {
    "cd": ContrastiveDivergence,
    "pcd": PersistentContrastiveDivergence,
    "exact": ExactGradient,
    "mfpcd": MeanFieldPersistent,
    "pt": ParallelTemperingAlgorithm,
}


def get_algorithm(algorithm: str | Algorithm, **kwargs) -> Algorithm:
    """An algorithm instance from a name ('cd', 'pcd', 'exact', 'mfpcd', 'pt') with its settings, or pass
    an instance through. A setting the algorithm does not take is refused naming the ones it takes."""
    if isinstance(algorithm, Algorithm):
        if kwargs:
            raise TypeError(f"settings {sorted(kwargs)} were given with an {type(algorithm).__name__} instance; "
                            f"set them on the instance instead.")
        return algorithm
    try:
        cls = ALGORITHMS[str(algorithm).lower()]
    except KeyError:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {sorted(ALGORITHMS)}.") from None
    return cls(**_check_settings(cls, kwargs))


def _check_settings(cls: type, kwargs: dict) -> dict:
    """``kwargs`` if ``cls`` takes them all; TypeError naming the settings it takes (and the nearest) otherwise."""
    takes = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    unknown = [k for k in kwargs if k not in takes]
    if unknown:
        hints = {k: difflib.get_close_matches(k, takes, n=1) for k in unknown}
        near = "; ".join(f"{k!r}: did you mean {h[0]!r}?" for k, h in hints.items() if h)
        raise TypeError(f"algorithm {cls.name!r} takes {takes or 'no settings'}, not {unknown}"
                        + (f" ({near})" if near else "") + ".")
    return kwargs
