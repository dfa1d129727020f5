"""The graph of a layered Boltzmann machine: edges from a topology, and initial weights."""

from __future__ import annotations

import torch

__all__ = ["initial_weights", "normalize_topology"]


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


def initial_weights(n_in: int, n_out: int, init: str, scale: float, generator: torch.Generator | None):
    """(n_in, n_out) float64 initial weights: N(0, 1) or a random orthogonal matrix, times ``scale``."""
    W = torch.randn(n_in, n_out, generator=generator, dtype=torch.float64)
    if init == "orthogonal":
        q, r = torch.linalg.qr(W if n_in >= n_out else W.T)
        q = q * torch.sign(torch.diagonal(r))
        W = q if n_in >= n_out else q.T
    return W * scale
