"""Sparsity targets for hidden layers (Lee, Ekanadham & Ng 2008; Hinton 2010, "A practical guide to
training RBMs", section 11).

For every targeted layer k with target p_k, a damped estimate of the layer's mean activation on the
data is kept::

    q_k <- damping * q_k + (1 - damping) * mean over the batch of the positive-phase means of layer k

(q_k starts at the first batch's means). The penalty is the cross-entropy between p_k and q_k; its
derivative with respect to a unit's total input is q_k - p_k, so the ascent direction gains

    -cost * (q_k - p_k)                       for the biases b_k,
    -cost * outer(mean x_i, q_k - p_k)        for the weights W_i_k of every edge (i, k),
    -cost * outer(q_k - p_k, mean x_j)        for the weights W_k_j of every edge (k, j),

where mean x_i is the batch mean of layer i's positive-phase state (the data for the visible layer,
the mean-field posterior for hidden layers). In a DBM a weight between two targeted layers gets both
terms. The positive-phase means are those centering uses (``Algorithm.data_means``), all-reduced over
ranks in data-parallel training, so every rank keeps the same q.

The estimates q are saved with the training state, so a resumed run continues bit-identically.
"""

from __future__ import annotations

import torch

from natural_bm.models.units import Bernoulli

__all__ = ["Sparsity", "get_sparsity"]


class Sparsity:
    """Sparsity targets (see the module docstring).

    Args:
        target: the wanted mean activation in (0, 1): one number for every hidden layer (layers 1 and up),
            or a mapping {layer index: target} (e.g. ``{1: 0.2, 2: 0.1}``).
        cost: the penalty's weight (>= 0), e.g. 1e-3.
        damping: the estimate's decay per update, in [0, 1) (0.9: a window of about 10 updates).

    ``q``: {layer: (n_k,) tensor}, the damped activation estimates, empty before the first update.
    """

    def __init__(self, target: float | dict = 0.1, cost: float = 1e-3, damping: float = 0.9) -> None:
        targets = dict(target) if isinstance(target, dict) else None
        if targets is not None:
            targets = {int(k): float(v) for k, v in targets.items()}
            bad = [k for k in targets if k < 1]
            if bad:
                raise ValueError(f"sparsity `target` names layer(s) {bad}; only hidden layers (1 and up) can "
                                 f"have a sparsity target.")
            values = list(targets.values())
        else:
            values = [float(target)]
        if not all(0.0 < t < 1.0 for t in values):
            raise ValueError(f"sparsity `target` must be in (0, 1), got {target!r}.")
        cost, damping = float(cost), float(damping)
        if not cost >= 0.0:
            raise ValueError(f"sparsity `cost` must be >= 0, got {cost}.")
        if not 0.0 <= damping < 1.0:
            raise ValueError(f"sparsity `damping` must be in [0, 1), got {damping}.")
        self.target = targets if targets is not None else float(target)
        self.cost, self.damping = cost, damping
        self.q: dict[int, torch.Tensor] = {}

    def get_config(self) -> dict:
        target = dict(self.target) if isinstance(self.target, dict) else self.target
        return {"target": target, "cost": self.cost, "damping": self.damping}

    def state_dict(self) -> dict:
        return {**self.get_config(), "q": {k: v.clone() for k, v in self.q.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(state["target"], state["cost"], state["damping"])
        self.q = {int(k): v.clone() for k, v in state.get("q", {}).items()}

    def targets(self, model) -> dict[int, float]:
        """{layer: target} for ``model``: every hidden layer for one number, else the mapping."""
        if isinstance(self.target, dict):
            return dict(self.target)
        return {k: self.target for k in range(1, model.n_layers)}

    def check_model(self, model) -> None:
        for k in self.targets(model):
            if k >= model.n_layers:
                raise ValueError(f"sparsity `target` names layer {k}, but the model has layers 0 to "
                                 f"{model.n_layers - 1}.")
            if not isinstance(model.units[k], Bernoulli):
                raise ValueError(f"sparsity targets need Bernoulli units; layer {k} has "
                                 f"{type(model.units[k]).__name__} units. Name the layers with `target` as a "
                                 f"mapping, e.g. {{1: 0.1}}.")

    def add_gradient(self, model, grads: dict, data_means: list[torch.Tensor]) -> dict:
        """Update the estimates q with the batch's positive-phase means (one (n_k,) tensor per layer)
        and return a copy of ``grads`` with the penalty's ascent direction added (module docstring)."""
        out = dict(grads)
        diffs = {}
        for k, p in self.targets(model).items():
            mean = data_means[k]
            q = self.q.get(k)
            q = mean.clone() if q is None or q.shape != mean.shape else torch.lerp(mean.to(q.dtype), q, self.damping)
            self.q[k] = q
            diffs[k] = (q - p).to(grads[model.bias_name(k)].dtype)
        if not self.cost:
            return out
        for k, d in diffs.items():
            name = model.bias_name(k)
            out[name] = out[name] - self.cost * d
        for i, j in model.edges:
            name = model.weight_name(i, j)
            if j in diffs:
                out[name] = out[name] - self.cost * torch.outer(data_means[i].to(diffs[j].dtype), diffs[j])
            if i in diffs:
                out[name] = out[name] - self.cost * torch.outer(diffs[i], data_means[j].to(diffs[i].dtype))
        return out


def get_sparsity(sparsity) -> Sparsity | None:
    """A ``Sparsity`` from None/False (none), a dict of its arguments (``{"target": 0.1, "cost": 1e-3,
    "damping": 0.9}``) or an instance."""
    if sparsity is None or sparsity is False:
        return None
    if isinstance(sparsity, Sparsity):
        return sparsity
    if isinstance(sparsity, dict):
        return Sparsity(**sparsity)
    raise ValueError(f"`sparsity` must be None, a dict such as {{'target': 0.1, 'cost': 1e-3, 'damping': 0.9}} "
                     f"or a Sparsity, got {sparsity!r}.")
