"""Deep Boltzmann machines: the layered core of ``natural_bm.models.layered``
with parameters named ``W_i_j`` (edge weights, (n_i, n_j)) and ``b_i`` (biases).

Layers x_0 (visible), x_1, ..., x_{L-1} joined by a bipartite topology
(default: the chain 0-1-2-...; skip connections such as
{0: {1, 3}, 1: {2}, 2: {3}} are allowed). Energy::

    E(x) = - sum_{(i, j)} x_i^T W_i_j x_j - sum_i b_i^T x_i

With two layers the model is an RBM and gives the same numbers as
:class:`natural_bm.models.RBM`.
"""

from __future__ import annotations

import copy

import torch

from natural_bm.models.layered import LayeredBM
from natural_bm.models.topology import normalize_topology
from natural_bm.rng import RandomSource

Generator = RandomSource | torch.Generator | None

__all__ = ["DBM", "normalize_topology"]


class DBM(LayeredBM):
    """A deep Boltzmann machine of any depth and bipartite topology.

    Args:
        layer_sizes: units per layer, visible first: e.g. (784, 500, 1000).
        topology: {layer: set of layers it connects to}; default: a chain.
        init, weight_scale, seed, device, dtype: as for ``RBM``.
        units: one unit type per layer (default: all Bernoulli).

    Parameters are named ``W_i_j`` (edge weights, (n_i, n_j)) and ``b_i``
    (biases). ``weights[(i, j)]`` and ``biases[i]`` index them.
    """

    def __init__(
        self,
        layer_sizes,
        topology: dict | None = None,
        init: str = "gaussian",
        weight_scale: float = 0.01,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        units=None,
    ) -> None:
        super().__init__(layer_sizes, topology, init, weight_scale, seed, device, dtype, units=units)

    def get_config(self) -> dict:
        return {
            "layer_sizes": list(self.layer_sizes),
            "topology": {i: list(js) for i, js in self.topology.items() if js},
            "init": self.init,
            "weight_scale": self.weight_scale,
        } | ({"units": self.units_config()} if not self.all_binary else {})

    @classmethod
    def from_rbm(cls, rbm) -> DBM:
        """The two-layer DBM with the RBM's parameters."""
        dbm = cls([rbm.n_visible, rbm.n_hidden], device=rbm.W.device, dtype=rbm.W.dtype,
                  units=[copy.deepcopy(u) for u in rbm.units])
        with torch.no_grad():
            dbm.W_0_1.copy_(rbm.W)
            dbm.b_0.copy_(rbm.vbias)
            dbm.b_1.copy_(rbm.hbias)
        return dbm

    def reconstruction_loss(self, v: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        """Cross-entropy of v and p(v | h), h sampled from the mean-field posterior: (n,) nats."""
        mu, _ = self.mean_field(v, max_steps=10)
        return self.reconstruction_error_from_means(v, mu, generator)

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """Mean-field posterior means of all hidden layers, concatenated: (n, sum of hidden sizes)."""
        mu, _ = self.mean_field(v)
        return torch.cat(mu[1:], 1)
