"""The layered core: Boltzmann machines as layers of units joined by a bipartite graph.

Layers x_0 (visible), x_1, ..., x_{L-1}, each of one unit type
(``natural_bm.models.units``; Bernoulli by default); an undirected edge
(i, j), i < j, carries weights of shape (n_i, n_j). Energy::

    E(x) = - sum_{(i, j)} x_i^T W_ij x_j - sum_i b_i^T x_i

and p_beta(x) = exp(-beta E(x)) / Z(beta). Every edge joins an even and an
odd layer, so given the even layers the odd ones are independent (and vice
versa): sampling and mean-field work in two blocks ("parities").

``LayeredBM`` holds the maths once: layer inputs, conditionals, sampling a
parity, the free energy with one parity summed out, the sufficient
statistics, mean-field and its bound, exact free energies by enumeration.
``RBM`` is its two-layer case (parameters ``W``, ``vbias``, ``hbias``, with
closed-form fast paths) and ``DBM`` the general case (``W_i_j``, ``b_i``).

The protocol that samplers, estimators, training and callbacks use:
``layer_sizes``, ``n_layers``, ``edges``, ``units``, ``weights``,
``biases``, ``parity_layers``, ``layer_input``, ``prob_layer``,
``sample_parity``, ``gibbs``, ``init_states``, ``free_energy_parity``,
``free_energy``, ``sufficient_statistics``, ``mean_field``,
``log_prob_bound`` (the inference methods live in ``models/inference.py``, the graph's helpers in
``models/topology.py``), plus ``BoltzmannMachine``'s I/O methods and Keras-style facade.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from natural_bm.datasets.mapped import MappedRows
from natural_bm.kernels import scale_by_beta
from natural_bm.models.base import BoltzmannMachine
from natural_bm.models.inference import LayeredInference
from natural_bm.models.topology import initial_weights, normalize_topology
from natural_bm.models.units import Bernoulli, units_from_spec
from natural_bm.rng import RandomSource
from natural_bm.validation import as_data_tensor, check_beta, check_positive_int

Generator = RandomSource | torch.Generator | None
States = list  # one (n, n_k) tensor per layer (None where unused)

#: exact free energies of deep models enumerate at most this many bits of hidden state
MAX_ENUMERATED_BITS = 16


class LayeredBM(LayeredInference, BoltzmannMachine):
    """A Boltzmann machine of layers joined by a bipartite topology (see the module docstring).

    Args:
        layer_sizes: units per layer, visible first: e.g. (784, 500, 1000).
        topology: {layer: set of layers it connects to}; default: a chain.
        init: ``"gaussian"`` (N(0, weight_scale^2)) or ``"orthogonal"``.
        weight_scale: scale of the initial weights.
        seed: seed of the initialisation (None: a fresh one).
        device, dtype: where the parameters live; CPU float32 by default.
        units: one unit type per layer: a name (``"bernoulli"``, ``"gaussian"``), a dict such as
            ``{"type": "gaussian", "sigma": 0.5}``, or a ``Units``; default all Bernoulli.
        weight_names: {(i, j): parameter name} (default ``W_i_j``).
        bias_names: one parameter name per layer (default ``b_i``).
        input_factors: {(from layer, to layer): factor} multiplying that
            edge's contribution to the receiving layer's input (default 1;
            greedy DBM pre-training doubles inputs with it).
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
        weight_names: dict | None = None,
        bias_names=None,
        input_factors: dict | None = None,
    ) -> None:
        super().__init__()
        sizes = [check_positive_int(n, "layer_sizes[i]") for n in layer_sizes]
        if len(sizes) < 2:
            raise ValueError(f"a layered Boltzmann machine needs at least 2 layers, got layer_sizes="
                             f"{list(layer_sizes)}.")
        if init not in ("gaussian", "orthogonal"):
            raise ValueError(f"`init` must be 'gaussian' or 'orthogonal', got {init!r}.")
        self.layer_sizes = sizes
        self.n_layers = len(sizes)
        self.edges = normalize_topology(self.n_layers, topology)
        self.topology = {i: sorted(j for a, j in self.edges if a == i) for i in range(self.n_layers)}
        self.neighbors = {k: [j for e in self.edges for j in e if k in e and j != k] for k in range(self.n_layers)}
        if units is not None and len(units) != self.n_layers:
            raise ValueError(f"`units` needs one unit type per layer ({self.n_layers}), got {len(units)}.")
        units = [Bernoulli(n) for n in sizes] if units is None else [units_from_spec(u, n) for u, n in
                                                                      zip(units, sizes, strict=True)]
        self.init, self.weight_scale = init, float(weight_scale)
        self._weight_name = dict(weight_names) if weight_names else {(i, j): f"W_{i}_{j}" for i, j in self.edges}
        self._bias_name = list(bias_names) if bias_names else [f"b_{k}" for k in range(self.n_layers)]
        self.input_factors = {tuple(k): float(v) for k, v in (input_factors or {}).items()}
        device = torch.device("cpu") if device is None else torch.device(device)
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        for i, j in self.edges:
            W = initial_weights(sizes[i], sizes[j], init, self.weight_scale, g)
            self.register_parameter(self._weight_name[(i, j)],
                                    torch.nn.Parameter(W.to(device=device, dtype=dtype), requires_grad=False))
        for k, n in enumerate(sizes):
            self.register_parameter(self._bias_name[k], torch.nn.Parameter(
                torch.zeros(n, device=device, dtype=dtype), requires_grad=False))
        # the modules registered for .to()/.double() and their buffers; ``units`` a tuple of the same objects,
        # read on every layer operation without nn.Module's attribute lookup
        self._unit_modules = torch.nn.ModuleList(units).to(device=device, dtype=dtype)
        self.units = tuple(self._unit_modules)
        self.param_names = tuple(self._weight_name[e] for e in self.edges) + tuple(self._bias_name)
        self.weight_names = tuple(self._weight_name[e] for e in self.edges)
        # learned standard deviations: the unit type's own parameter, trained as the model's ``log_sigma_<k>``
        self._sigma_layers = [k for k, u in enumerate(self.units) if getattr(u, "learn_sigma", False)]
        if any(k != 0 for k in self._sigma_layers):
            raise ValueError("learned sigma is for the visible layer (its data give the positive statistics "
                             f"exactly); layers {[k for k in self._sigma_layers if k]} ask for it.")
        for k in self._sigma_layers:
            self.register_parameter(f"log_sigma_{k}", self.units[k].log_sigma)
        self.param_names += tuple(f"log_sigma_{k}" for k in self._sigma_layers)

    def __repr__(self) -> str:
        """Layer sizes and unit types, the edges where they are not a chain, input factors other than 1, the
        parameter count, and the dtype and device where they are not float32 on the CPU, e.g.
        ``RBM(784 bernoulli -> 500 bernoulli; 393,284 parameters: 392,000 weights, 1,284 biases)``."""
        def units(k: int) -> str:
            u, cfg = self.units[k], self.units[k].config()
            if cfg["type"] == "gaussian":
                sigma = u.sigma.detach().double().cpu()
                lo, hi = float(sigma.min()), float(sigma.max())
                s = "learned σ" if cfg.get("learn_sigma") else (f"σ={lo:g}" if lo == hi else f"σ {lo:g} to {hi:g}")
                return f"{self.layer_sizes[k]} gaussian({s})"
            if cfg["type"] == "softmax" and cfg["group_size"] != self.layer_sizes[k]:
                return f"{self.layer_sizes[k]} softmax(groups of {cfg['group_size']})"
            return f"{self.layer_sizes[k]} {cfg['type']}"

        chain = self.edges == [(k, k + 1) for k in range(self.n_layers - 1)]
        text = (" -> " if chain else ", ").join(units(k) for k in range(self.n_layers))
        if not chain:
            text += "; edges " + " ".join(f"{i}-{j}" for i, j in self.edges)
        factors = [f"{i}->{j} ×{f:g}" for (i, j), f in sorted(self.input_factors.items()) if f != 1.0]
        if factors:
            text += "; input factors " + ", ".join(factors)
        n_weights = sum(self.layer_sizes[i] * self.layer_sizes[j] for i, j in self.edges)
        n_biases, n_sigma = sum(self.layer_sizes), sum(self.layer_sizes[k] for k in self._sigma_layers)
        text += (f"; {n_weights + n_biases + n_sigma:,} parameters: {n_weights:,} weights, {n_biases:,} biases"
                 + (f", {n_sigma:,} log σ" if n_sigma else ""))
        where = ([] if self.dtype == torch.float32 else [str(self.dtype).replace("torch.", "")]) + (
            [] if self.device.type == "cpu" else [str(self.device)])
        return f"{type(self).__name__}({text}{'; ' + ', '.join(where) if where else ''})"

    supports_init_from_data = True

    def init_from_data(self, x, eps: float = 1e-3) -> "LayeredBM":
        """Set the visible biases so that, with zero weights, the visible marginals have the data's means:
        logit(clip(mean(x), eps, 1 - eps)) for binary units (natural_bm's ``init_standard``),
        mean(x) / sigma^2 for Gaussian ones. Returns ``self``.
        """
        if isinstance(x, np.memmap):
            x = MappedRows(x, name="x", value_range=self.data_range)
        if isinstance(x, MappedRows):  # larger than memory: column means read in chunks
            mean = x.column_means().to(self.bias(0).device)
        else:
            mean = as_data_tensor(x, "x", self.n_visible, device=self.bias(0).device, dtype=torch.float64,
                                  value_range=self.data_range).mean(0)
        with torch.no_grad():
            if not self.binary_visible:
                self.bias(0).copy_(mean / self.units[0].sigma.double() ** 2)
                return self
            p = mean.clamp(eps, 1 - eps)
            self.bias(0).copy_(torch.log(p) - torch.log1p(-p))
        return self

    # ------------------------------------------------------------------ structure
    @property
    def n_input(self) -> int:
        return self.layer_sizes[0]

    @property
    def data_range(self) -> tuple[float, float] | None:
        """The range of values training data may take, (0, 1) for binary visible units and None (any
        finite value) for real-valued ones; pass it to ``validation.as_data_tensor``."""
        return self.units[0].data_range

    @property
    def binary_visible(self) -> bool:
        """True when the visible units are binary (Bernoulli), so that pseudo-likelihood, binarisation
        and likelihoods of binary data apply."""
        return isinstance(self.units[0], Bernoulli)

    @property
    def all_binary(self) -> bool:
        """Whether every layer is Bernoulli (the fast binary kernels apply)."""
        return all(isinstance(u, Bernoulli) for u in self.units)

    def units_config(self) -> list[dict] | None:
        """The unit types for ``get_config`` (None when all are Bernoulli, the default)."""
        return None if self.all_binary else [u.config() for u in self.units]

    @property
    def n_visible(self) -> int:
        return self.layer_sizes[0]

    def weight(self, i: int, j: int) -> torch.Tensor:
        """Weights of edge (i, j), i < j: (n_i, n_j)."""
        return self._parameters[self._weight_name[(i, j)]]

    def bias(self, k: int) -> torch.Tensor:
        """Biases of layer k: (n_k,)."""
        return self._parameters[self._bias_name[k]]

    def weight_name(self, i: int, j: int) -> str:
        return self._weight_name[(i, j)]

    def bias_name(self, k: int) -> str:
        return self._bias_name[k]

    @property
    def weights(self) -> dict[tuple[int, int], torch.Tensor]:
        return {e: self.weight(*e) for e in self.edges}

    @property
    def biases(self) -> list[torch.Tensor]:
        return [self.bias(k) for k in range(self.n_layers)]

    def parity_layers(self, parity: int) -> list[int]:
        """Layers of parity 0 (even, includes the visible layer) or 1 (odd)."""
        return [k for k in range(self.n_layers) if k % 2 == parity]

    def split_codes(self, codes: torch.Tensor, layers: list[int]) -> States:
        """States with the columns of ``codes`` (n, sum of the sizes of ``layers``) spread over ``layers``."""
        states: States = [None] * self.n_layers
        offset = 0
        for k in layers:
            states[k] = codes[:, offset : offset + self.layer_sizes[k]]
            offset += self.layer_sizes[k]
        return states

    # ------------------------------------------------------------------ maths
    def layer_input(self, k: int, states: States, start: tuple[torch.Tensor, int] | None = None
                    ) -> torch.Tensor:
        """Total input of layer k: b_k + sum over neighbours j of factor_jk x_j W (oriented), (n, n_k).

        ``start``: (the input from the first ``m`` neighbours, m), from ``fixed_inputs``, to add only
        the rest: the same operations in the same order, so the result is bit-identical."""
        if start is None:
            return self._add_inputs(k, states, None, self.neighbors[k])
        return self._add_inputs(k, states, start[0], self.neighbors[k][start[1]:])

    def _add_inputs(self, k: int, states: States, out: torch.Tensor | None, neighbors) -> torch.Tensor:
        """``out`` (b_k when None) plus factor_jk x_j W (oriented) for each of ``neighbors`` in turn."""
        for j in neighbors:
            W = self.weight(k, j).T if k < j else self.weight(j, k)  # oriented (n_j, n_k)
            alpha = self.input_factors.get((j, k), 1.0)
            out = torch.addmm(self.bias(k) if out is None else out, states[j], W, alpha=alpha)
        return out

    def fixed_inputs(self, fixed, states: States) -> dict[int, tuple[torch.Tensor, int]]:
        """For every layer not in ``fixed`` whose first neighbours (in ``neighbors`` order) are all in
        ``fixed`` (layers held constant, such as the data in mean-field): (their part of the input,
        how many), to pass as ``layer_input(k, states, start)`` while those layers do not change."""
        out = {}
        for k in range(self.n_layers):
            if k in fixed:
                continue
            m = 0
            while m < len(self.neighbors[k]) and self.neighbors[k][m] in fixed:
                m += 1
            if m:
                out[k] = (self._add_inputs(k, states, None, self.neighbors[k][:m]), m)
        return out

    def prob_layer(self, k: int, states: States, beta: float | torch.Tensor = 1.0) -> torch.Tensor:
        """E[x_k | neighbouring layers] at inverse temperature ``beta`` (p(x_k = 1 | ...) for
        Bernoulli units): (n, n_k)."""
        return self.units[k].mean(self.layer_input(k, states), check_beta(beta))

    def sample_layer(self, k: int, states: States, beta: float | torch.Tensor = 1.0,
                     generator: Generator = None) -> torch.Tensor:
        """A draw of x_k given its neighbouring layers: (n, n_k)."""
        return self.units[k].sample(self.layer_input(k, states), check_beta(beta), generator)

    def joint_energy(self, states: States) -> torch.Tensor:
        """E(x) of full states (one tensor per layer), or of their means (the energy is multilinear):
        (n,) nats at beta = 1."""
        return self._linear_energy(states) + sum(u.self_energy(x) for u, x in zip(self.units, states, strict=True))

    def _linear_energy(self, states: States) -> torch.Tensor:
        """The weight and bias terms of the energy, - sum x_i^T W x_j - sum b^T x: (n,)."""
        e = -sum((states[i] @ W * states[j]).sum(1) for (i, j), W in self.weights.items())
        return e - sum(states[k] @ b for k, b in enumerate(self.biases))

    def free_energy_parity(self, states: States, sum_out: int = 1, beta: float | torch.Tensor = 1.0
                           ) -> torch.Tensor:
        """Free energy (nats, (n,)) of the layers of parity ``1 - sum_out`` with the
        layers of parity ``sum_out`` summed out analytically::

            F(x_kept) = beta sum_{k kept} (s_k(x_k) - b_k^T x_k) - sum_{s summed} log_partition_s(input_s, beta)

        with s_k the unit type's own energy term (0 for Bernoulli units).

        ``states`` lists one tensor per layer; entries of summed-out layers are ignored.
        """
        beta = check_beta(beta)
        kept = sum(self.units[k].self_energy(states[k]) - states[k] @ self.bias(k)
                   for k in self.parity_layers(1 - sum_out))
        out = scale_by_beta(kept, beta)
        for s in self.parity_layers(sum_out):
            out = out - self.units[s].log_partition(self.layer_input(s, states), beta)
        return out

    def free_energy(self, v: torch.Tensor, beta: float | torch.Tensor = 1.0) -> torch.Tensor:
        """F(v) = -log sum_h exp(-beta E(v, h)), (n,) nats.

        Exact: in closed form for two layers; for deeper models by enumerating
        the states of the even hidden layers (binary codes, one-hot groups of
        softmax layers; only for tiny models or label layers: refused above
        2^``MAX_ENUMERATED_BITS`` states). For large models use ``log_prob_bound``.
        """
        if self.n_layers == 2:
            return self.free_energy_parity([v, None], sum_out=1, beta=beta)
        even_hidden = self.parity_layers(0)[1:]
        S = math.prod(self.units[k].n_states() for k in even_hidden)
        if S > 2**MAX_ENUMERATED_BITS:
            raise ValueError(
                f"exact F(v) needs {S:.3g} states of the even hidden layers; use log_prob_bound(v) instead."
            )
        n = v.shape[0]
        codes = self.enumerate_states(even_hidden, v.device, v.dtype).repeat(n, 1)  # row r * S + s: image r, code s
        states = self.split_codes(codes, even_hidden)
        states[0] = v.repeat_interleave(S, 0)
        log_p = -self.free_energy_parity(states, sum_out=1, beta=beta)
        return -torch.logsumexp(log_p.view(n, S), 1)

    def enumerate_states(self, layers: list[int], device=None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Every joint state of ``layers`` (each layer's ``Units.all_states``), as rows of their
        concatenated columns: (product of the layers' state counts, sum of their sizes)."""
        per = [self.units[k].all_states(device, dtype) for k in layers]
        idx = torch.cartesian_prod(*[torch.arange(len(p), device=device) for p in per]).reshape(-1, len(per))
        return torch.cat([p[idx[:, i]] for i, p in enumerate(per)], 1)

    def sufficient_statistics(self, states: States) -> dict[str, torch.Tensor]:
        """Batch means of the sufficient statistics of every parameter, by parameter name: x_i^T x_j / n
        for each edge and the mean of x_k for each bias (minus the energy's derivatives)."""
        n = states[0].shape[0]
        out = {self.weight_name(i, j): states[i].T @ states[j] / n for i, j in self.edges}
        out.update({self.bias_name(k): states[k].mean(0) for k in range(self.n_layers)})
        out.update({f"log_sigma_{k}": self.units[k].sigma_statistic(states[k]) for k in self._sigma_layers})
        return out

    # ------------------------------------------------------------------ sampling
    def sample_parity(self, states: States, parity: int, beta: float | torch.Tensor = 1.0,
                      generator: Generator = None, clamp_visible: bool = False, clamp=()) -> States:
        """Resample every layer of ``parity`` given the others (one block), except the visible layer with
        ``clamp_visible`` and the layers listed in ``clamp``; returns new states."""
        states = list(states)
        for k in self.parity_layers(parity):
            if (clamp_visible and k == 0) or k in clamp:
                continue
            states[k] = self.sample_layer(k, states, beta, generator)
        return states

    def gibbs(self, states, k: int = 1, beta: float | torch.Tensor = 1.0, generator: Generator = None,
              clamp_visible: bool = False, clamp=()):
        """``k`` sweeps of block Gibbs sampling (odd layers, then even layers).

        ``states`` is a list of full states, or a visible tensor; the visible
        tensor is then returned, and the hidden layers start from the first
        sweep (two layers: v -> h -> v) or from ``init_states`` (deeper models,
        whose odd layers need the even ones).
        """
        k = check_positive_int(k, "k")
        only_visible = isinstance(states, torch.Tensor)
        if only_visible:
            states = [states, None] if self.n_layers == 2 else self.init_states(states, generator)
        for _ in range(k):
            states = self.sample_parity(states, 1, beta, generator, clamp=clamp)
            states = self.sample_parity(states, 0, beta, generator, clamp_visible=clamp_visible, clamp=clamp)
        return states[0] if only_visible else states

    def init_states(self, v: torch.Tensor, generator: Generator = None) -> States:
        """Full states from a visible batch: hidden layers sampled bottom-up, doubling the input
        of layers that also receive top-down input (a cheap approximation of the posterior)."""
        states: States = [v] + [None] * (self.n_layers - 1)
        for k in range(1, self.n_layers):
            states[k] = self.units[k].sample(self._bottom_up_input(k, states), 1.0, generator)
        return states

    def _bottom_up_input(self, k: int, states: States) -> torch.Tensor:
        """b_k + factor * input from lower layers, factor 2 when layer k also has layers above
        (standing in for their missing top-down input), else 1."""
        a = self.bias(k).expand(states[0].shape[0], -1)
        factor = 2.0 if any(j > k for j in self.neighbors[k]) else 1.0
        for j in (j for j in self.neighbors[k] if j < k):
            a = a + factor * self.input_factors.get((j, k), 1.0) * (states[j] @ self.weight(j, k))
        return a

    def bottom_up_prob(self, k: int, states: States) -> torch.Tensor:
        """E[x_k] under the bottom-up input of ``init_states``: (n, n_k)."""
        return self.units[k].mean(self._bottom_up_input(k, states))

    def filters(self) -> torch.Tensor:
        """The weights of every edge from the visible layer, side by side: (n_visible, sum of their sizes)."""
        return torch.cat([self.weight(i, j) for i, j in self.edges if i == 0], dim=1)

    def sweep_multiply_adds(self) -> int:
        """Twice the sum over edges of n_i n_j: every weight matrix is used once in each direction per sweep."""
        return 2 * sum(self.layer_sizes[i] * self.layer_sizes[j] for i, j in self.edges)

    # ------------------------------------------------------------------ training support
    def num_trainable_layers(self) -> int:
        return self.n_layers - 1

    def layer_parameter_names(self, layer: int) -> list[str]:
        """Layer ``layer`` = hidden layer ``layer + 1``: weights of edges from lower layers, its bias
        (and the visible bias for layer 0)."""
        if not 0 <= layer < self.n_layers - 1:
            raise ValueError(f"layer must be in 0..{self.n_layers - 2}, got {layer}.")
        k = layer + 1
        names = [self.weight_name(i, k) for i, j in self.edges if j == k] + [self.bias_name(k)]
        return ([self.bias_name(0)] if layer == 0 else []) + names

    # ------------------------------------------------------------------ exact
    def n_exact_states(self) -> int:
        """States enumerated by ``log_partition_exact`` (of ``enumerated_parity``)."""
        return 2 ** sum(self.layer_sizes[k] for k in self.parity_layers(self.enumerated_parity()))

    def enumerated_parity(self) -> int:
        """The parity that exact log Z enumerates: of the all-binary parities, the one with fewer
        units (odd on ties); the other parity is summed or integrated out in closed form."""
        binary = [p for p in (1, 0) if all(isinstance(self.units[k], Bernoulli) for k in self.parity_layers(p))]
        if not binary:
            raise ValueError("exact log Z enumerates one parity of binary layers, but both parities hold "
                             "non-binary units.")
        return min(binary, key=lambda p: sum(self.layer_sizes[k] for k in self.parity_layers(p)))

