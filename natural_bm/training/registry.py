"""Algorithms by name: ``get_algorithm("pcd", k=1, n_chains=100)``."""

from __future__ import annotations

from natural_bm.training.algorithms import (
    Algorithm,
    ContrastiveDivergence,
    ExactGradient,
    MeanFieldPersistent,
    PersistentContrastiveDivergence,
)
from natural_bm.training.tempering import ParallelTemperingAlgorithm
from natural_bm.validation import check_keywords, keyword_names

__all__ = ["ALGORITHMS", "algorithm_class", "get_algorithm"]

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
    cls = algorithm_class(algorithm)
    check_keywords(kwargs, keyword_names(cls.__init__), f"the {cls.name!r} algorithm")
    return cls(**kwargs)


def algorithm_class(name: str) -> type:
    """The algorithm class of ``name``; ValueError naming the algorithms there are."""
    try:
        return ALGORITHMS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}.") from None
