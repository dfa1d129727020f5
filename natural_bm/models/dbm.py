"""Deep (layered) Boltzmann machines with a bipartite topology.

Layers x_0 (visible), x_1, ..., x_{L-1} of Bernoulli units; an undirected
edge (i, j), i < j, carries weights W_i_j of shape (n_i, n_j). Energy::

    E(x) = - sum_{(i, j)} x_i^T W_i_j x_j - sum_i b_i^T x_i

and p_beta(x) = exp(-beta E(x)) / Z(beta). Every edge must join an even and an
odd layer, so that given the even layers the odd ones are independent (and
vice versa): sampling and mean-field work in two blocks. The default topology
is the chain 0-1-2-...; skip connections such as {0: {1, 3}, 1: {2}, 2: {3}}
are allowed. With two layers the model is an RBM and gives the same numbers
as :class:`natural_bm.models.RBM`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from natural_bm.kernels import reconstruction_cross_entropy
from natural_bm.models.base import BoltzmannMachine
from natural_bm.rng import RandomSource, bernoulli
from natural_bm.validation import check_beta, check_positive_int

Generator = RandomSource | torch.Generator | None
States = list  # list of (n, n_i) tensors, one per layer (None where unused)


def normalize_topology(n_layers: int, topology: dict | None) -> list[tuple[int, int]]:
    """Sorted list of edges (i, j), i < j; raises ValueError naming a bad edge."""
    if topology is None:
        return [(i, i + 1) for i in range(n_layers - 1)]
    edges = set()
    for i, targets in topology.items():
        for j in targets if not isinstance(targets, int) else [targets]:
            i_, j_ = int(i), int(j)
            if not (0 <= i_ < n_layers and 0 <= j_ < n_layers):
                raise ValueError(f"topology edge ({i_}, {j_}) names a layer outside 0..{n_layers - 1}.")
            if i_ == j_:
                raise ValueError(f"topology edge ({i_}, {j_}) connects a layer to itself.")
            if (i_ + j_) % 2 == 0:
                parity = "even" if i_ % 2 == 0 else "odd"
                raise ValueError(
                    f"topology edge ({min(i_, j_)}, {max(i_, j_)}) connects two {parity} layers; the graph must be "
                    "bipartite between even and odd layers so that each parity can be sampled as one block."
                )
            edges.add((min(i_, j_), max(i_, j_)))
    touched = {k for e in edges for k in e}
    lonely = [k for k in range(n_layers) if k not in touched]
    if lonely:
        raise ValueError(f"layer(s) {lonely} have no edge in the topology; connect them or drop them.")
    return sorted(edges)


class DBM(BoltzmannMachine):
    """A deep Boltzmann machine of any depth and bipartite topology.

    Args:
        layer_sizes: units per layer, visible first: e.g. (784, 500, 1000).
        topology: {layer: set of layers it connects to}; default: a chain.
        init, weight_scale, seed, device, dtype: as for ``RBM``.

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
    ) -> None:
        super().__init__()
        sizes = [check_positive_int(n, "layer_sizes[i]") for n in layer_sizes]
        if len(sizes) < 2:
            raise ValueError(f"a DBM needs at least 2 layers, got layer_sizes={list(layer_sizes)}.")
        if init not in ("gaussian", "orthogonal"):
            raise ValueError(f"`init` must be 'gaussian' or 'orthogonal', got {init!r}.")
        self.layer_sizes = sizes
        self.n_layers = len(sizes)
        self.edges = normalize_topology(self.n_layers, topology)
        self.topology = {i: sorted(j for a, j in self.edges if a == i) for i in range(self.n_layers)}
        self.init, self.weight_scale = init, float(weight_scale)
        device = torch.device("cpu") if device is None else torch.device(device)
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        names = []
        for i, j in self.edges:
            W = torch.randn(sizes[i], sizes[j], generator=g, dtype=torch.float64)
            if init == "orthogonal":
                q, r = torch.linalg.qr(W if sizes[i] >= sizes[j] else W.T)
                q = q * torch.sign(torch.diagonal(r))
                W = q if sizes[i] >= sizes[j] else q.T
            self.register_parameter(
                f"W_{i}_{j}",
                torch.nn.Parameter((W * self.weight_scale).to(device=device, dtype=dtype), requires_grad=False),
            )
            names.append(f"W_{i}_{j}")
        for i, n in enumerate(sizes):
            self.register_parameter(f"b_{i}", torch.nn.Parameter(torch.zeros(n, device=device, dtype=dtype),
                                                                 requires_grad=False))
            names.append(f"b_{i}")
        self.param_names = tuple(names)
        self.weight_names = tuple(f"W_{i}_{j}" for i, j in self.edges)
        self.neighbors = {k: [j for e in self.edges for j in e if k in e and j != k] for k in range(self.n_layers)}

    # ------------------------------------------------------------------ structure
    @property
    def n_input(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_visible(self) -> int:
        return self.layer_sizes[0]

    @property
    def weights(self) -> dict[tuple[int, int], torch.Tensor]:
        return {(i, j): getattr(self, f"W_{i}_{j}") for i, j in self.edges}

    @property
    def biases(self) -> list[torch.Tensor]:
        return [getattr(self, f"b_{i}") for i in range(self.n_layers)]

    def parity_layers(self, parity: int) -> list[int]:
        """Layers of parity 0 (even, includes the visible layer) or 1 (odd)."""
        return [k for k in range(self.n_layers) if k % 2 == parity]

    def get_config(self) -> dict:
        return {
            "layer_sizes": list(self.layer_sizes),
            "topology": {i: list(js) for i, js in self.topology.items() if js},
            "init": self.init,
            "weight_scale": self.weight_scale,
        }

    @classmethod
    def from_rbm(cls, rbm) -> DBM:
        """The two-layer DBM with the RBM's parameters."""
        dbm = cls([rbm.n_visible, rbm.n_hidden], device=rbm.W.device, dtype=rbm.W.dtype)
        with torch.no_grad():
            dbm.W_0_1.copy_(rbm.W)
            dbm.b_0.copy_(rbm.vbias)
            dbm.b_1.copy_(rbm.hbias)
        return dbm

    def split_codes(self, codes: torch.Tensor, layers: list[int]) -> States:
        """States with the columns of ``codes`` (n, sum of the sizes of ``layers``) spread over ``layers``."""
        states: States = [None] * self.n_layers
        offset = 0
        for k in layers:
            states[k] = codes[:, offset : offset + self.layer_sizes[k]]
            offset += self.layer_sizes[k]
        return states

    # ------------------------------------------------------------------ maths
    def layer_input(self, k: int, states: States) -> torch.Tensor:
        """Total input b_k + sum over neighbours j of x_j W (oriented): (n, n_k)."""
        out = None
        for j in self.neighbors[k]:
            # W_k_j is (n_k, n_j) when k < j; W_j_k is (n_j, n_k) when j < k
            term = states[j] @ getattr(self, f"W_{k}_{j}").T if k < j else states[j] @ getattr(self, f"W_{j}_{k}")
            out = term if out is None else out + term
        b = getattr(self, f"b_{k}")
        return b.expand_as(out) + out if out is not None else b.expand(states[0].shape[0], -1)

    def prob_layer(self, k: int, states: States, beta: float = 1.0) -> torch.Tensor:
        """p(x_k = 1 | neighbouring layers) = sigmoid(beta * layer_input): (n, n_k)."""
        beta = check_beta(beta)
        a = self.layer_input(k, states)
        return torch.sigmoid(a if beta == 1.0 else beta * a)

    def energy(self, states: States) -> torch.Tensor:
        """E(x) for full states (one tensor per layer): (n,) nats at beta = 1."""
        e = -sum((states[i] @ W * states[j]).sum(1) for (i, j), W in self.weights.items())
        return e - sum(states[k] @ b for k, b in enumerate(self.biases))

    def free_energy_parity(self, states: States, sum_out: int = 1, beta: float = 1.0) -> torch.Tensor:
        """Free energy (nats, (n,)) of the layers of parity ``1 - sum_out`` with the
        layers of parity ``sum_out`` summed out analytically::

            F(x_kept) = -beta sum_{k kept} b_k^T x_k - sum_{s summed} sum_units softplus(beta * input_s)

        ``states`` lists one tensor per layer; entries of summed-out layers are ignored.
        """
        beta = check_beta(beta)
        kept = self.parity_layers(1 - sum_out)
        out = -beta * sum(states[k] @ getattr(self, f"b_{k}") for k in kept)
        for s in self.parity_layers(sum_out):
            out = out - F.softplus(beta * self.layer_input(s, states)).sum(1)
        return out

    def free_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """F(v) = -log sum_h exp(-beta E(v, h)), (n,) nats.

        Exact: in closed form for two layers; for deeper models by enumerating
        the even hidden layers (only for tiny models; refused above 2^16 states).
        For large models use ``log_prob_bound`` (the mean-field lower bound).
        """
        if self.n_layers == 2:
            return self.free_energy_parity([v, None], sum_out=1, beta=beta)
        even_hidden = self.parity_layers(0)[1:]
        n_enum = sum(self.layer_sizes[k] for k in even_hidden)
        if n_enum > 16:
            raise ValueError(
                f"exact F(v) needs 2^{n_enum} states of the even hidden layers; use log_prob_bound(v) instead."
            )
        from natural_bm.estimators.exact import _bits

        n, S = v.shape[0], 2**n_enum
        codes = _bits(0, S, n_enum, v.device, v.dtype).repeat(n, 1)  # row r * S + s: image r, code s
        states = self.split_codes(codes, even_hidden)
        states[0] = v.repeat_interleave(S, 0)
        log_p = -self.free_energy_parity(states, sum_out=1, beta=beta)
        return -torch.logsumexp(log_p.view(n, S), 1)

    # ------------------------------------------------------------------ sampling
    def sample_parity(self, states: States, parity: int, beta: float = 1.0, generator: Generator = None,
                      clamp_visible: bool = False) -> States:
        """Resample every layer of ``parity`` given the others (one block); returns new states."""
        states = list(states)
        for k in self.parity_layers(parity):
            if clamp_visible and k == 0:
                continue
            states[k] = bernoulli(self.prob_layer(k, states, beta), generator)
        return states

    def gibbs(self, states, k: int = 1, beta: float = 1.0, generator: Generator = None,
              clamp_visible: bool = False):
        """``k`` sweeps of block Gibbs sampling (odd layers, then even layers).

        ``states`` is a list of full states, or a visible tensor (hidden layers
        are then initialised from the first sweep and the visible tensor is returned).
        """
        k = check_positive_int(k, "k")
        only_visible = isinstance(states, torch.Tensor)
        if only_visible:
            states = self.init_states(states, generator)
        for _ in range(k):
            states = self.sample_parity(states, 1, beta, generator)
            states = self.sample_parity(states, 0, beta, generator, clamp_visible=clamp_visible)
        return states[0] if only_visible else states

    def filters(self) -> torch.Tensor:
        """The weights of every edge from the visible layer, side by side: (n_visible, sum of their sizes)."""
        return torch.cat([self.weights[(i, j)] for i, j in self.edges if i == 0], dim=1)

    def sweep_multiply_adds(self) -> int:
        """Twice the sum over edges of n_i n_j: every weight matrix is used once in each direction per sweep."""
        return 2 * sum(self.layer_sizes[i] * self.layer_sizes[j] for i, j in self.edges)

    # sampler protocol (SampleCallback, natural-bm sample): a chain's state is the list of layer states
    def init_chains(self, v: torch.Tensor, generator: Generator = None) -> States:
        """Chain states started at the binary visible batch ``v`` (hidden layers from ``init_states``)."""
        return self.init_states(v, generator)

    def gibbs_snapshot(self, chains: States, steps: int, generator: Generator = None):
        """Advance ``chains`` by ``steps`` >= 1 block-Gibbs sweeps; returns (p(v = 1 | the rest) of the
        last sweep, new chains)."""
        states = self.gibbs(chains, steps - 1, generator=generator) if steps > 1 else list(chains)
        states = self.sample_parity(states, 1, generator=generator)
        means = self.prob_layer(0, states)
        states[0] = bernoulli(means, generator)
        states = self.sample_parity(states, 0, generator=generator, clamp_visible=True)
        return means, states

    def init_states(self, v: torch.Tensor, generator: Generator = None) -> States:
        """Full states from a visible batch: hidden layers sampled bottom-up, doubling the input
        of layers that also receive top-down input (a cheap approximation of the posterior)."""
        states: States = [v] + [None] * (self.n_layers - 1)
        for k in range(1, self.n_layers):
            states[k] = bernoulli(self.bottom_up_prob(k, states), generator)
        return states

    def bottom_up_prob(self, k: int, states: States) -> torch.Tensor:
        """sigmoid(b_k + factor * input from lower layers), factor 2 when layer k also has
        layers above (standing in for their missing top-down input), else 1."""
        a = getattr(self, f"b_{k}").expand(states[0].shape[0], -1)
        factor = 2.0 if any(j > k for j in self.neighbors[k]) else 1.0
        for j in (j for j in self.neighbors[k] if j < k):
            a = a + factor * (states[j] @ getattr(self, f"W_{j}_{k}"))
        return torch.sigmoid(a)

    # ------------------------------------------------------------------ inference
    def mean_field(self, v: torch.Tensor, max_steps: int = 30, rtol: float = 0.0, atol: float = 1e-6,
                   init: States | None = None) -> tuple[States, int]:
        """Mean-field posterior q(h | v) = prod sigmoid(mu): returns (mu per layer, steps used).

        Starts from a bottom-up pass (doubled input for layers with top-down
        input) or ``init``; each step updates the odd layers, then the even
        hidden layers. Stops when max |mu_new - mu_old| <= atol + rtol |mu_old|
        for every layer, or after ``max_steps``.
        """
        max_steps = check_positive_int(max_steps, "max_steps")
        if init is not None:
            mu = [v] + list(init[1:])
        else:
            mu = [v] + [None] * (self.n_layers - 1)
            for k in range(1, self.n_layers):
                mu[k] = self.bottom_up_prob(k, mu)
        for step in range(1, max_steps + 1):
            old = list(mu)
            for parity in (1, 0):
                for k in self.parity_layers(parity):
                    if k:
                        mu[k] = self.prob_layer(k, mu)
            converged = all(
                bool(((mu[k] - old[k]).abs() <= atol + rtol * old[k].abs()).all()) for k in range(1, self.n_layers)
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
        bound = -self.energy(mu)  # energy is multilinear: E_q[E] = E(mu) for factorised q
        for k in range(1, self.n_layers):  # entropy of q; xlogy gives 0 log 0 = 0 (no NaN at saturation)
            p = mu[k]
            bound = bound - (torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)).sum(1)
        return bound

    def unnormalized_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """log p*(v) for ``log_likelihood``: exact for two layers, the mean-field bound otherwise."""
        return self.log_prob_bound(v)

    # ------------------------------------------------------------------ training support
    def num_trainable_layers(self) -> int:
        return self.n_layers - 1

    def layer_parameter_names(self, layer: int) -> list[str]:
        """Layer ``layer`` = hidden layer ``layer + 1``: weights of edges from lower layers, its bias
        (and the visible bias for layer 0)."""
        if not 0 <= layer < self.n_layers - 1:
            raise ValueError(f"layer must be in 0..{self.n_layers - 2}, got {layer}.")
        k = layer + 1
        names = [f"W_{i}_{k}" for i, j in self.edges if j == k] + [f"b_{k}"]
        return (["b_0"] if layer == 0 else []) + names

    def statistics(self, states: States) -> dict[str, torch.Tensor]:
        """Batch means of the sufficient statistics of every parameter."""
        n = states[0].shape[0]
        out = {f"W_{i}_{j}": states[i].T @ states[j] / n for i, j in self.edges}
        out.update({f"b_{k}": states[k].mean(0) for k in range(self.n_layers)})
        return out

    def monitor_free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) for the fit loop's ``free_energy_gap``: exact for 2 layers, else -log_prob_bound."""
        return -self.log_prob_bound(v, max_steps=10)

    def reconstruction_loss(self, v: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        """Cross-entropy of v and p(v | h), h sampled from the mean-field posterior: (n,) nats."""
        mu, _ = self.mean_field(v, max_steps=10)
        states = [v] + [bernoulli(m, generator) for m in mu[1:]]
        logits = self.layer_input(0, states)
        return reconstruction_cross_entropy(logits, v)

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """Mean-field posterior means of all hidden layers, concatenated: (n, sum of hidden sizes)."""
        mu, _ = self.mean_field(v)
        return torch.cat(mu[1:], 1)

    # ------------------------------------------------------------------ exact
    def n_exact_states(self) -> int:
        """States enumerated by ``log_partition_exact`` (the smaller parity)."""
        return 2 ** min(sum(self.layer_sizes[k] for k in self.parity_layers(p)) for p in (0, 1))

    def log_partition_exact(self, beta: float = 1.0, chunk_size: int = 2**12, device=None, progress: bool = True):
        """Exact log Z(beta) by enumerating the parity with fewer units (float64)."""
        from natural_bm.estimators.exact import MAX_STATES, _logsumexp_enumerated

        enum_parity = min((0, 1), key=lambda p: sum(self.layer_sizes[k] for k in self.parity_layers(p)))
        layers = self.parity_layers(enum_parity)
        n_enum = sum(self.layer_sizes[k] for k in layers)
        if 2**n_enum > MAX_STATES:
            raise ValueError(f"exact log Z would enumerate 2^{n_enum} states; use natural_bm.estimators.AIS.")
        if chunk_size < 1:
            raise ValueError(f"`chunk_size` must be >= 1, got {chunk_size}.")
        device = torch.device(device) if device is not None else self.device
        model = copy.deepcopy(self).to(device=device, dtype=torch.float64)

        def log_p(codes: torch.Tensor) -> torch.Tensor:
            return -model.free_energy_parity(model.split_codes(codes, layers), sum_out=1 - enum_parity, beta=beta)

        return _logsumexp_enumerated(n_enum, log_p, chunk_size, device, progress)

    def __repr__(self) -> str:
        return f"DBM(layer_sizes={self.layer_sizes}, edges={self.edges}, dtype={self.dtype})"
