"""Block Gibbs chains of a layered model, kept between calls and saved with callback states.

A chain's state is a list with one (n_chains, n_k) tensor per layer (``None``
for a layer that the next sweep draws before it is read: the hidden layer of
an RBM). Every sweep draws the odd layers given the even ones, then the even
layers given the odd ones, at the sampler's inverse temperature ``beta``.
The sample grids of ``SampleCallback`` and TensorBoard, ``natural-bm
sample`` and the chains that reverse AIS starts from all come from here, so
a new sampler serves them all.
"""

from __future__ import annotations

import torch

from natural_bm.rng import RandomSource
from natural_bm.validation import as_data_tensor, check_beta, check_positive_int

Generator = RandomSource | torch.Generator | None
States = list


def chains_to(chains, device=None, dtype=None) -> States | None:
    """Chains (a list of layer states; or, from older files, one visible tensor) moved to
    ``device``/``dtype`` as a list; ``None`` stays ``None``."""
    if chains is None:
        return None
    if isinstance(chains, torch.Tensor):
        chains = [chains, None]
    return [c.detach().to(device=device, dtype=dtype) if c is not None else None for c in chains]


class GibbsSampler:
    """Block Gibbs sampling of ``model`` (any ``LayeredBM``) at inverse temperature ``beta``.

    Args:
        model: the model whose chains are run.
        beta: inverse temperature (1: the model itself).
        clamp: {layer: states (n_chains, n_layer)} held fixed, e.g. a label layer's one-hot rows to
            draw digits of given classes; the chains then sample p(the rest | the clamped layers).
    """

    def __init__(self, model, beta: float = 1.0, clamp: dict | None = None) -> None:
        self.model = model
        self.beta = check_beta(beta)
        self.clamp = {}
        for k, x in dict(clamp or {}).items():
            if not isinstance(k, int) or not 0 < k < model.n_layers:
                raise ValueError(f"`clamp` keys are hidden layer indices 1..{model.n_layers - 1}, got {k!r} (the "
                                 f"visible layer is what the sampler draws).")
            n = model.layer_sizes[k]
            x = as_data_tensor(x, f"clamp[{k}]", n, device=model.device, dtype=model.dtype,
                               value_range=model.units[k].data_range)
            if model.units[k].name == "softmax":
                groups = x.reshape(x.shape[0], -1, model.units[k].group_size)
                if not bool(((groups == 0) | (groups == 1)).all() and (groups.sum(-1) == 1).all()):
                    raise ValueError(f"`clamp[{k}]` must hold one-hot rows (one 1 per group of the softmax layer).")
            self.clamp[k] = x

    def init_chains(self, v: torch.Tensor, generator: Generator = None) -> States:
        """Chains started at the visible batch ``v`` (n_chains, n_visible): the hidden layers are
        drawn by the first sweep (two layers) or bottom-up (``init_states``, deeper models)."""
        m = self.model
        for k, x in self.clamp.items():
            if x.shape[0] != v.shape[0]:
                raise ValueError(f"`clamp[{k}]` has {x.shape[0]} rows but there are {v.shape[0]} chains; give one "
                                 f"clamped row per chain.")
        states = [v, None] if m.n_layers == 2 else m.init_states(v, generator)
        for k, x in self.clamp.items():
            states[k] = x
        return states

    def run(self, chains: States, steps: int, generator: Generator = None) -> States:
        """``chains`` advanced by ``steps`` >= 0 sweeps (a new list; the input is not modified)."""
        steps = check_positive_int(steps, "steps", minimum=0)
        if not steps:
            return list(chains)
        return self.model.gibbs(list(chains), steps, self.beta, generator, clamp=tuple(self.clamp))

    def snapshot(self, chains: States, steps: int, generator: Generator = None):
        """Advance ``chains`` by ``steps`` >= 1 sweeps; returns (E[v | the rest] of the last sweep,
        (n_chains, n_visible), new chains). The means make smoother pictures than the binary draws."""
        m = self.model
        steps = check_positive_int(steps, "steps")
        states = self.run(chains, steps - 1, generator)
        states = m.sample_parity(states, 1, self.beta, generator, clamp=tuple(self.clamp))
        a = m.layer_input(0, states)
        means, states[0] = m.units[0].mean(a, self.beta), m.units[0].sample(a, self.beta, generator)
        states = m.sample_parity(states, 0, self.beta, generator, clamp_visible=True, clamp=tuple(self.clamp))
        return means, states
