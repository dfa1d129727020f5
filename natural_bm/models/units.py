"""Unit types: what a layer's units are, and the maths that follows from it.

A layer of a ``LayeredBM`` holds units of one type. The layer's energy is

    E_layer(x) = s(x) - a^T x

where ``a`` is the layer's total input (its bias plus what its neighbours
send through the weights) and ``s`` the unit type's own term (0 for binary
units, x^2 / (2 sigma^2) for Gaussian ones). At inverse temperature ``beta``
the conditional is p(x | a) proportional to exp(-beta E_layer(x)), and the
unit type provides, for a batch of inputs ``a`` (n, n_units):

* ``mean(a, beta)``: E[x | a], (n, n_units);
* ``sample(a, beta, generator)``: a draw of x ~ p(x | a), (n, n_units);
* ``log_partition(a, beta)``: log of the sum (or integral) over the layer's
  states of exp(-beta E_layer(x)), summed over its units, (n,) nats: the term
  the layer contributes to a free energy when it is summed out;
* ``self_energy(x)``: s(x) summed over units, (n,) nats;
* ``expected_self_energy(mu)`` and ``entropy(mu)``: E_q[s(x)] and the entropy
  of the factorised q with means ``mu`` that mean-field uses, (n,) nats;
* ``log_prob_from_mean(x, mu)``: log q(x) of states ``x`` under that q, (n,)
  nats (importance sampling from the mean-field posterior);
  ``log_density_from_mean(mu)``: the same as a function of ``x`` alone, with
  what depends only on ``mu`` computed once (for many draws from one q);
* ``data_range``: the values data for this layer may take ((0, 1), or None
  for any finite value).

Because every type's energy is linear in x apart from s(x), the weights'
and biases' sufficient statistics are x_i^T x_j and x for every type: the
training algorithms need nothing unit-specific beyond sampling.

Unit types are ``torch.nn.Module``s, so their constants (a Gaussian layer's
standard deviations) move with the model; ``config()`` holds them, so a saved
model's config rebuilds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from natural_bm.kernels import binary_codes, reconstruction_cross_entropy, scale_by_beta
from natural_bm.rng import RandomSource, bernoulli

Generator = RandomSource | torch.Generator | None


class Units(torch.nn.Module):
    """Base class of unit types; see the module docstring for the contract."""

    name = "units"
    data_range: tuple[float, float] | None = (0.0, 1.0)

    def __init__(self, n_units: int) -> None:
        super().__init__()
        self.n_units = int(n_units)

    def mean(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, a: torch.Tensor, beta=1.0, generator: Generator = None) -> torch.Tensor:
        raise NotImplementedError

    def log_partition(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        raise NotImplementedError

    def self_energy(self, x: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    def expected_self_energy(self, mu: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    def entropy(self, mu: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample_from_mean(self, mu: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        """A draw of x from the conditional (at beta = 1) whose mean is ``mu`` (saves recomputing the input)."""
        raise NotImplementedError

    def log_prob_from_mean(self, x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """log q(x) summed over units, (n,) nats, for q the conditional (at beta = 1) whose mean is ``mu``:
        the density ``sample_from_mean`` draws from."""
        raise NotImplementedError

    def log_density_from_mean(self, mu: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x -> log_prob_from_mean(x, mu)`` for states ``x`` of this layer (the same values), with what
        depends only on ``mu`` computed once: for many draws from one q."""
        return lambda x: self.log_prob_from_mean(x, mu)

    def states_from_data(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        """Chain states started at data rows ``x`` (binary draws for binary units, the values otherwise)."""
        return x.clone()

    def n_states(self) -> int:
        """How many states the layer has (``all_states``); only discrete units."""
        raise ValueError(f"{self.name} units take continuous values; their states cannot be enumerated.")

    def all_states(self, device=None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Every state of the layer, (n_states, n_units), for exact sums; only discrete units."""
        raise ValueError(f"{self.name} units take continuous values; their states cannot be enumerated.")

    def reconstruction_error(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | input a) up to a constant, (n,) nats: how badly a reconstruction explains ``x``."""
        raise NotImplementedError

    def config(self) -> dict:
        """What ``units_from_spec`` needs to rebuild this type (constants travel in the state dict)."""
        return {"type": self.name}

    def extra_repr(self) -> str:
        return f"n_units={self.n_units}"


class Bernoulli(Units):
    """Binary units x in {0, 1}; s(x) = 0, so E_layer = -a^T x.

    p(x_i = 1 | a) = sigmoid(beta a_i); summing the layer out contributes
    sum_i softplus(beta a_i). Data: values in [0, 1], binary states or grey
    levels read as the probability of a 1 (a likelihood needs binary data).
    """

    name = "bernoulli"
    data_range = (0.0, 1.0)

    def mean(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        return torch.sigmoid(scale_by_beta(a, beta))

    def sample(self, a: torch.Tensor, beta=1.0, generator: Generator = None) -> torch.Tensor:
        return bernoulli(torch.sigmoid(scale_by_beta(a, beta)), generator)

    def log_partition(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        return F.softplus(scale_by_beta(a, beta)).sum(1)

    def sample_from_mean(self, mu: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        return bernoulli(mu, generator)

    def states_from_data(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        return bernoulli(x, generator)

    def n_states(self) -> int:
        return 2**self.n_units

    def all_states(self, device=None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return binary_codes(0, 2**self.n_units, self.n_units, device, dtype)

    def reconstruction_error(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return reconstruction_cross_entropy(a, x)

    def entropy(self, mu: torch.Tensor) -> torch.Tensor:
        # log q(x) is linear in x, so -E_q[log q(x)] is -log q at x = mu
        return -self.log_prob_from_mean(mu, mu)

    def log_prob_from_mean(self, x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        # xlogy gives 0 log 0 = 0, so saturated means give no NaN
        return (torch.special.xlogy(x, mu) + torch.special.xlogy(1 - x, 1 - mu)).sum(1)

    def log_density_from_mean(self, mu: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        # binary states: log mu where x = 1, log(1 - mu) where x = 0, the terms xlogy gives (and 0 log 0 = 0
        # never arises: only the chosen term is summed); two logs per unit once instead of per draw
        on, off = torch.log(mu), torch.log(1 - mu)
        return lambda x: torch.where(x > 0.5, on, off).sum(1)


class Gaussian(Units):
    """Real-valued units with standard deviations sigma (fixed or learned): s(x) = sum_i x_i^2 / (2 sigma_i^2).

    E_layer = sum_i x_i^2 / (2 sigma_i^2) - a^T x, so with the layer's bias b and
    weights W the energy of a Gaussian-Bernoulli RBM is
    sum_i v_i^2 / (2 sigma_i^2) - b^T v - v^T W h - c^T h, and
    p(x_i | a) = N(sigma_i^2 a_i, sigma_i^2 / beta). Summing the layer out contributes
    sum_i [beta sigma_i^2 a_i^2 / 2 + log(sqrt(2 pi / beta) sigma_i)].
    Data: any finite real values; standardise each column (zero mean, unit
    variance) and keep sigma = 1, the usual choice, or learn sigma.

    Learned standard deviations (``learn_sigma=True``, visible layers) are the
    parameter ``log_sigma`` (log sigma_i, so sigma stays positive), which the
    model trains with the others: the energy's derivative gives the sufficient
    statistic d(-E)/d log sigma_i = x_i^2 / sigma_i^2 (``sigma_statistic``), so
    the gradient is its data mean minus its model mean, as for every other
    parameter (Cho, Ilin & Raiko 2011 learn log sigma^2 the same way).

    Args:
        n_units: units in the layer.
        sigma: standard deviation, one number or one per unit (saved with the model); the
            starting value when learned.
        learn_sigma: learn sigma (default False: fixed).
    """

    name = "gaussian"
    data_range = None

    def __init__(self, n_units: int, sigma=1.0, learn_sigma: bool = False) -> None:
        super().__init__(n_units)
        sigma = torch.as_tensor(sigma, dtype=torch.float64).flatten()
        if sigma.numel() == 1:
            sigma = sigma.expand(self.n_units).clone()
        if sigma.numel() != self.n_units or not bool(torch.isfinite(sigma).all()) or bool((sigma <= 0).any()):
            raise ValueError(f"`sigma` must be one positive number or {self.n_units} of them, got {sigma.tolist()}.")
        self.learn_sigma = bool(learn_sigma)
        if self.learn_sigma:  # float64 until the model moves it to its dtype
            self.log_sigma = torch.nn.Parameter(torch.log(sigma), requires_grad=False)
        else:
            self.register_buffer("fixed_sigma", sigma)

    @property
    def sigma(self) -> torch.Tensor:
        """Standard deviations (n_units,)."""
        return torch.exp(self.log_sigma) if self.learn_sigma else self.fixed_sigma

    def sigma_statistic(self, x: torch.Tensor) -> torch.Tensor:
        """Batch mean of d(-E)/d log sigma_i = x_i^2 / sigma_i^2 for states ``x`` (n, n_units): (n_units,)."""
        return (x * x).mean(0) / self._var(x)

    def _var(self, like: torch.Tensor) -> torch.Tensor:
        return self.sigma.to(like.dtype) ** 2

    def mean(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        return self._var(a) * a

    def sample(self, a: torch.Tensor, beta=1.0, generator: Generator = None) -> torch.Tensor:
        std = self.sigma.to(a.dtype) if isinstance(beta, float) and beta == 1.0 else self.sigma.to(a.dtype) / beta**0.5
        return self.mean(a) + std * _normal(a, generator)

    def sample_from_mean(self, mu: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        return mu + self.sigma.to(mu.dtype) * _normal(mu, generator)

    def log_partition(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        var = self._var(a)
        log_norm = 0.5 * torch.log(2 * math.pi * var).sum()
        if isinstance(beta, float) and beta == 1.0:
            return 0.5 * (var * a * a).sum(1) + log_norm
        return 0.5 * beta * (var * a * a).sum(1) + log_norm - 0.5 * self.n_units * torch.log(torch.as_tensor(beta))

    def self_energy(self, x: torch.Tensor) -> torch.Tensor:
        return (x * x / (2 * self._var(x))).sum(1)

    def reconstruction_error(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Squared error scaled by the variances: sum_i (x_i - sigma_i^2 a_i)^2 / (2 sigma_i^2)."""
        d = x - self.mean(a)
        return (d * d / (2 * self._var(a))).sum(1)

    def expected_self_energy(self, mu: torch.Tensor) -> torch.Tensor:
        # q has the conditional's variance sigma^2, so E_q[x^2] = mu^2 + sigma^2
        return ((mu * mu + self._var(mu)) / (2 * self._var(mu))).sum(1)

    def entropy(self, mu: torch.Tensor) -> torch.Tensor:
        h = 0.5 * torch.log(2 * math.pi * math.e * self._var(mu)).sum()
        return h.expand(mu.shape[0])

    def log_prob_from_mean(self, x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        var = self._var(mu)
        return -((x - mu) ** 2 / (2 * var)).sum(1) - 0.5 * torch.log(2 * math.pi * var).sum()

    def config(self) -> dict:
        return {"type": self.name, "sigma": self.sigma.double().cpu().tolist()} | (
            {"learn_sigma": True} if self.learn_sigma else {})


class Softmax(Units):
    """Groups of ``group_size`` units with exactly one unit on in each group (one-hot; e.g. a label layer).

    E_layer = -a^T x with x one-hot per group, so p(x_g = e_i | a) = softmax(beta a_g)_i and summing the
    layer out contributes sum over groups of logsumexp(beta a_g). Units are grouped contiguously: group
    g is units g * group_size ... (g + 1) * group_size - 1. Data: one-hot rows per group (rows of
    probabilities per group are drawn from when chains start at data).

    Args:
        n_units: units in the layer, a multiple of ``group_size``.
        group_size: units per group (default: one group of all units).
    """

    name = "softmax"
    data_range = (0.0, 1.0)

    def __init__(self, n_units: int, group_size: int | None = None) -> None:
        super().__init__(n_units)
        self.group_size = int(group_size or n_units)
        if self.group_size < 2 or self.n_units % self.group_size:
            raise ValueError(f"softmax units: `group_size` must be >= 2 and divide the layer's {self.n_units} "
                             f"units, got {group_size}.")

    def _groups(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1, self.group_size)

    def mean(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        return torch.softmax(self._groups(scale_by_beta(a, beta)), -1).reshape(a.shape)

    def sample(self, a: torch.Tensor, beta=1.0, generator: Generator = None) -> torch.Tensor:
        return self.sample_from_mean(self.mean(a, beta), generator)

    def sample_from_mean(self, mu: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        groups = self._groups(mu)
        if isinstance(generator, RandomSource):
            u = generator.uniform(groups.shape[:2], mu.dtype)
        else:
            u = torch.rand(groups.shape[:2], generator=generator, device=mu.device, dtype=mu.dtype)
        return one_hot_from_uniform(groups, u).reshape(mu.shape)

    def states_from_data(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        return self.sample_from_mean(x, generator)

    def n_states(self) -> int:
        return self.group_size ** (self.n_units // self.group_size)

    def all_states(self, device=None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Every combination of one unit on per group: (group_size^groups, n_units)."""
        g, n_groups = self.group_size, self.n_units // self.group_size
        idx = torch.cartesian_prod(*[torch.arange(g, device=device)] * n_groups).reshape(-1, n_groups)
        return F.one_hot(idx, g).reshape(idx.shape[0], self.n_units).to(dtype)

    def log_partition(self, a: torch.Tensor, beta=1.0) -> torch.Tensor:
        return torch.logsumexp(self._groups(scale_by_beta(a, beta)), -1).sum(1)

    def entropy(self, mu: torch.Tensor) -> torch.Tensor:
        return -self.log_prob_from_mean(mu, mu)  # log q(x) is linear in x, as for Bernoulli units

    def log_prob_from_mean(self, x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        return torch.special.xlogy(x, mu).sum(1)

    def log_density_from_mean(self, mu: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        log_mu = torch.log(mu)  # one-hot states: the chosen unit's log mean per group
        return lambda x: torch.where(x > 0.5, log_mu, torch.zeros((), dtype=mu.dtype, device=mu.device)).sum(1)

    def reconstruction_error(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -(self._groups(x) * torch.log_softmax(self._groups(a), -1)).sum((1, 2))

    def config(self) -> dict:
        return {"type": self.name, "group_size": self.group_size}


def one_hot_from_uniform(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One-hot draws from categorical ``probs`` (..., K) with one uniform per distribution ``u`` (...):
    the first category whose cumulative probability exceeds u (the last one if rounding leaves none)."""
    below = (torch.cumsum(probs, -1) <= u[..., None]).sum(-1, keepdim=True).clamp_max(probs.shape[-1] - 1)
    return torch.zeros_like(probs).scatter_(-1, below, 1.0)


def _normal(like: torch.Tensor, generator: Generator) -> torch.Tensor:
    """Standard normal numbers shaped like ``like``, from ``generator`` (a ``RandomSource``: Box-Muller
    on its uniforms, so runs stay reproducible from the seed)."""
    if isinstance(generator, RandomSource):
        u1, u2 = generator.uniform(like.shape, like.dtype), generator.uniform(like.shape, like.dtype)
        return torch.sqrt(-2 * torch.log1p(-u1)) * torch.cos(2 * math.pi * u2)
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


UNIT_TYPES: dict[str, type[Units]] = {"bernoulli": Bernoulli, "gaussian": Gaussian, "softmax": Softmax}


def units_from_spec(spec, n_units: int) -> Units:
    """A ``Units`` for a layer of ``n_units`` from its name (``"bernoulli"``, ``"gaussian"``), a dict
    ``{"type": name, **arguments}`` (e.g. ``{"type": "gaussian", "sigma": 0.5}``), or an instance."""
    if isinstance(spec, Units):
        if spec.n_units != n_units:
            raise ValueError(f"a {spec.name} unit type for {spec.n_units} units was given for a layer of {n_units}.")
        return spec
    args = {}
    if isinstance(spec, dict):
        args = {k: v for k, v in spec.items() if k != "type"}
        spec = spec.get("type")
    try:
        cls = UNIT_TYPES[str(spec).lower()]
    except KeyError:
        raise ValueError(f"unknown unit type {spec!r}; valid types: {sorted(UNIT_TYPES)}.") from None
    return cls(n_units, **args)
