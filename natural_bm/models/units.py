"""Unit types: what a layer's units are, and the maths that follows from it.

A layer of a ``LayeredBM`` holds units of one type. The model gives every
layer its total input ``a`` (its bias plus what its neighbours send through
the weights, times the inverse temperature ``beta``); the unit type turns
that input into a conditional distribution p(x | a) and the quantities that
training and the estimators need from it:

* ``mean(a)``: E[x | a], (n, n_units);
* ``sample(a, generator)``: a draw of x ~ p(x | a), (n, n_units);
* ``log_partition(a)``: log sum_x exp(a^T x) over the layer's states, summed
  over its units, (n,) nats. It is the term the layer contributes to a free
  energy when it is summed out;
* ``entropy(mu)``: the entropy of the factorised distribution with means
  ``mu``, (n,) nats (mean-field bounds).

Each type states its energy term and the data it accepts. Further types
(Gaussian, softmax) are added here, as subclasses of ``Units``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from natural_bm.rng import RandomSource, bernoulli

Generator = RandomSource | torch.Generator | None


class Units:
    """Base class of unit types; see the module docstring for the contract."""

    name = "units"

    def mean(self, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, a: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        raise NotImplementedError

    def log_partition(self, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self, mu: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Bernoulli(Units):
    """Binary units x in {0, 1}, energy term -b^T x (plus the weight terms).

    p(x_i = 1 | a) = sigmoid(a_i); summing a layer out contributes
    sum_i softplus(a_i) = sum_i log(1 + e^{a_i}). Data for a Bernoulli layer
    are values in [0, 1]: binary states, or grey levels read as the
    probability of a 1 (for training statistics; a likelihood needs binary data).
    """

    name = "bernoulli"

    def mean(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(a)

    def sample(self, a: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        return bernoulli(torch.sigmoid(a), generator)

    def log_partition(self, a: torch.Tensor) -> torch.Tensor:
        return F.softplus(a).sum(1)

    def entropy(self, mu: torch.Tensor) -> torch.Tensor:
        # xlogy gives 0 log 0 = 0, so saturated means give no NaN
        return -(torch.special.xlogy(mu, mu) + torch.special.xlogy(1 - mu, 1 - mu)).sum(1)


UNIT_TYPES: dict[str, type[Units]] = {"bernoulli": Bernoulli}


def units_from_name(name: str | Units) -> Units:
    """A ``Units`` instance from its name (``"bernoulli"``) or itself."""
    if isinstance(name, Units):
        return name
    try:
        return UNIT_TYPES[str(name).lower()]()
    except KeyError:
        raise ValueError(f"unknown unit type {name!r}; valid types: {sorted(UNIT_TYPES)}.") from None
