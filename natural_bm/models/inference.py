"""Inference in a layered Boltzmann machine: mean-field posteriors, bounds and importance-sampled
estimates of log p*(v), label prediction. ``LayeredInference`` is a mixin of ``LayeredBM``: its methods use
the protocol's maths (``layer_input``, ``free_energy_parity``, ``parity_layers``, the units)."""

from __future__ import annotations

import math

import torch

from natural_bm.rng import RandomSource
from natural_bm.validation import as_data_tensor, check_positive_int

__all__ = ["LayeredInference"]

Generator = RandomSource | torch.Generator | None
States = list  # one (n, n_k) tensor per layer (None where unused)


class LayeredInference:
    """Posterior inference of ``LayeredBM`` (mixed into it; not used on its own)."""

    def mean_field(self, v: torch.Tensor, max_steps: int = 30, rtol: float = 0.0, atol: float = 1e-6,
                   init: States | None = None, clamp: dict | None = None) -> tuple[States, int]:
        """Mean-field posterior q(h | v) (factorised): returns (means per layer, steps used).

        Starts from a bottom-up pass (doubled input for layers with top-down
        input) or ``init``; each step updates the odd layers, then the even
        hidden layers. Stops when ``max |mu_new - mu_old| <= atol + rtol |mu_old|``
        for every layer, or after ``max_steps``. Exact in one step for two layers.
        ``clamp``: {layer: states (n, n_layer)} held fixed as data (e.g. one-hot labels), so the
        result is q(h | v, clamped layers).
        """
        max_steps = check_positive_int(max_steps, "max_steps")
        clamp = clamp or {}
        if init is not None:
            mu = [v] + list(init[1:])
        else:
            mu = [v] + [None] * (self.n_layers - 1)
            for k in range(1, self.n_layers):
                mu[k] = clamp[k] if k in clamp else self.bottom_up_prob(k, mu)
        for k, x in clamp.items():
            mu[k] = x
        free = [k for k in range(1, self.n_layers) if k not in clamp]
        # the data's (and clamped layers') part of each layer's input is computed once, not every step
        start = self.fixed_inputs({0, *clamp}, mu)
        for step in range(1, max_steps + 1):
            old = list(mu)
            for parity in (1, 0):
                for k in self.parity_layers(parity):
                    if k and k not in clamp:
                        mu[k] = self.units[k].mean(self.layer_input(k, mu, start.get(k)))
            converged = all(
                bool(((mu[k] - old[k]).abs() <= atol + rtol * old[k].abs()).all()) for k in free
            )
            if converged:
                return mu, step
        return mu, max_steps

    def log_prob_bound(self, v: torch.Tensor, mu: States | None = None, **mf_kwargs) -> torch.Tensor:
        """Mean-field variational lower bound on log p*(v) (unnormalised), (n,) nats::

            log p*(v) >= -E_q[E(v, h)] + H(q)

        so log p(v) >= log_prob_bound(v) - log Z. Exact (equal) for two layers.
        """
        if self.n_layers == 2:
            return -self.free_energy(v)
        if mu is None:
            mu, _ = self.mean_field(v, **mf_kwargs)
        # the weight and bias terms are multilinear, so their expectation under a factorised q is their
        # value at the means; the units' own terms (Gaussian x^2) need E_q
        bound = -self._linear_energy(mu) - self.units[0].self_energy(v)
        for k in range(1, self.n_layers):
            bound = bound - self.units[k].expected_self_energy(mu[k]) + self.units[k].entropy(mu[k])
        return bound

    def log_prob_importance(self, v: torch.Tensor, n_samples: int = 100, generator: Generator = None,
                            mu: States | None = None, **mf_kwargs) -> torch.Tensor:
        """Importance-sampled log p*(v) (unnormalised), (n,) nats::

            log (1/K) sum_k p*(v, h_k) / q(h_k),   h_1 ... h_K ~ q

        with h the even hidden layers (h2, h4, ...) drawn from their mean-field posterior q (``mu``,
        else ``mean_field(v, **mf_kwargs)``) and the odd layers summed out exactly (p*(v, h) =
        exp(-F(v, h)), ``free_energy_parity``); K = ``n_samples`` draws from ``generator``.

        Its expectation over the draws is a lower bound on log p*(v) that is never below
        ``log_prob_bound`` (already for K = 1, since the odd layers are summed out rather than
        bounded) and rises to log p*(v) as K grows (Burda, Grosse & Salakhutdinov 2016). A single
        value can lie above log p*(v): it is a stochastic bound. Exact for two layers (nothing to draw).
        Free energies in the model's dtype; log q and the log weights' average in float64.
        ``v``: (n, n_visible) data, checked (shape, finite, range) as the estimators check it.
        """
        v = as_data_tensor(v, "v", self.n_input, device=self.device, dtype=self.dtype, value_range=self.data_range)
        if self.n_layers == 2:
            return -self.free_energy(v).double()
        n_samples = check_positive_int(n_samples, "n_samples")
        if mu is None:
            mu, _ = self.mean_field(v, **mf_kwargs)
        even_hidden = self.parity_layers(0)[1:]
        log_w = torch.empty(n_samples, v.shape[0], dtype=torch.float64, device=v.device)
        states: States = [v] + [None] * (self.n_layers - 1)
        log_density = {k: self.units[k].log_density_from_mean(mu[k].double()) for k in even_hidden}
        for s in range(n_samples):
            log_q = 0.0
            for k in even_hidden:
                states[k] = self.units[k].sample_from_mean(mu[k], generator)
                log_q = log_q + log_density[k](states[k].double())
            log_w[s] = -self.free_energy_parity(states, sum_out=1).double() - log_q
        return torch.logsumexp(log_w, 0) - math.log(n_samples)

    def label_layer(self, layer: int | None = None) -> int:
        """The label layer (default: the last layer), checked to hold softmax units in one group."""
        layer = self.n_layers - 1 if layer is None else int(layer)
        units = self.units[layer]
        if units.name != "softmax" or units.group_size != self.layer_sizes[layer]:
            raise ValueError(f"layer {layer} must hold softmax units in one group to take labels (e.g. "
                             f"DBM([784, 500, 10], units=['bernoulli', 'bernoulli', 'softmax'])), got {units}.")
        return layer

    def predict_log_proba(self, v: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """log p(y | v) of a softmax layer ``layer`` (default: the last layer) with one group, exactly:
        (n, n_classes) nats. The layer must have the visible layer's parity and be, with it, the whole
        of that parity (e.g. [pixels, hidden, labels]: v and y joined through the hidden layer), so that
        -F(v, y) with the other parity summed out is log p*(v, y)."""
        layer = self.label_layer(layer)
        if layer % 2 or set(self.parity_layers(0)) != {0, layer}:
            raise ValueError(f"exact p(y | v) needs the visible layer and layer {layer} to be the whole even "
                             f"parity; this model's even layers are {self.parity_layers(0)}.")
        n, n_classes = v.shape[0], self.layer_sizes[layer]
        eye = torch.eye(n_classes, device=v.device, dtype=v.dtype)
        states: States = [None] * self.n_layers
        states[0] = v.repeat_interleave(n_classes, 0)
        states[layer] = eye.repeat(n, 1)
        log_joint = -self.free_energy_parity(states, sum_out=1).view(n, n_classes)
        return torch.log_softmax(log_joint, 1)

    def predict(self, v, layer: int | None = None, batch_size: int = 1000) -> torch.Tensor:
        """The most probable class of each row of ``v`` under p(y | v) (``predict_log_proba``), in
        batches of ``batch_size`` rows: (n,) int64 class indices."""
        v = as_data_tensor(v, "v", self.n_visible, device=self.bias(0).device, dtype=self.dtype,
                           value_range=self.data_range)
        batch_size = check_positive_int(batch_size, "batch_size")
        with torch.no_grad():
            return torch.cat([self.predict_log_proba(v[lo : lo + batch_size], layer).argmax(1)
                              for lo in range(0, v.shape[0], batch_size)])

    def reconstruction_error_from_means(self, v: torch.Tensor, mu: States, generator: Generator = None
                                        ) -> torch.Tensor:
        """How badly v is reconstructed through hidden layers drawn from their means ``mu`` (e.g. the
        mean-field posterior; ``mu[0]`` is ignored): the visible units' ``reconstruction_error`` of v
        given those draws, (n,) nats (the cross-entropy for binary units)."""
        states = [v] + [u.sample_from_mean(m, generator) for u, m in zip(self.units[1:], mu[1:], strict=True)]
        return self.units[0].reconstruction_error(self.layer_input(0, states), v)

    def unnormalized_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """log p*(v) for ``log_likelihood``: exact for two layers, the mean-field bound otherwise."""
        return self.log_prob_bound(v)

    def monitor_free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) for the fit loop's ``free_energy_gap``: exact for 2 layers, else -log_prob_bound."""
        return -self.log_prob_bound(v, max_steps=10)
