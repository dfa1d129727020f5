"""Parallel tempering: chains at K inverse temperatures that swap states between neighbours.

Each step runs one block-Gibbs sweep of every chain at its own temperature
(``GibbsSampler``), then proposes to swap the states of neighbouring
temperatures k and k + 1 (the even pairs on even steps, the odd pairs on odd
steps), accepting with the Metropolis probability

    min(1, exp((beta_k - beta_{k+1}) (E(x_k) - E(x_{k+1}))))

with E the joint energy. The swap leaves the product of the tempered
distributions invariant, so the chains at beta = 1 sample the model while
the hot chains (small beta) cross between its modes and hand them down.
Swap rates are counted per pair, so the ladder can be judged: rates near 0
mean neighbours are too far apart, near 1 that the ladder has more rungs
than it needs (Desjardins et al. 2010; Cho, Raiko & Ilin 2010).
"""

from __future__ import annotations

import torch

from natural_bm.rng import RandomSource
from natural_bm.sampling.gibbs import GibbsSampler
from natural_bm.validation import check_positive_int

Generator = RandomSource | torch.Generator | None


def geometric_betas(n_temperatures: int, min_beta: float = 0.1) -> torch.Tensor:
    """Inverse temperatures 1 = beta_0 > ... > beta_{K-1} = ``min_beta``, geometrically spaced (float64)."""
    n = check_positive_int(n_temperatures, "n_temperatures", minimum=2)
    if not 0 < min_beta < 1:
        raise ValueError(f"`min_beta` must lie in (0, 1), got {min_beta}.")
    return torch.logspace(0.0, float(torch.log10(torch.tensor(min_beta, dtype=torch.float64))), n,
                          dtype=torch.float64)


class ParallelTempering:
    """Chains of ``model`` at the inverse temperatures ``betas`` (beta_0 = 1 first), with neighbour swaps.

    Args:
        model: any ``LayeredBM``.
        betas: decreasing inverse temperatures starting at 1; default ``geometric_betas(n_temperatures)``.
        n_temperatures: rungs of the default ladder (10).

    Attributes:
        chains: one list of layer states per temperature (``chains[0]`` samples the model).
        swaps_proposed, swaps_accepted: (K - 1,) counts per neighbouring pair; ``swap_rates()`` their ratio.
    """

    def __init__(self, model, betas=None, n_temperatures: int = 10) -> None:
        self.model = model
        betas = geometric_betas(n_temperatures) if betas is None else torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 2 or float(betas[0]) != 1.0 or bool((betas[1:] >= betas[:-1]).any()) \
                or float(betas[-1]) <= 0:
            raise ValueError(f"`betas` must decrease from 1 to a value > 0 (at least two), got {betas.tolist()}.")
        self.betas = betas
        self.samplers = [GibbsSampler(model, float(b)) for b in betas]
        self.chains: list | None = None
        self.swaps_proposed = torch.zeros(len(betas) - 1, dtype=torch.int64)
        self.swaps_accepted = torch.zeros(len(betas) - 1, dtype=torch.int64)
        self.steps = 0

    @property
    def n_temperatures(self) -> int:
        return len(self.betas)

    def init_chains(self, v: torch.Tensor, generator: Generator = None) -> None:
        """Start every temperature's chains at the visible batch ``v`` (n_chains, n_visible)."""
        self.chains = [s.run(s.init_chains(v.clone(), generator), 1, generator) for s in self.samplers]

    def step(self, generator: Generator = None) -> list:
        """One sweep at every temperature, then one round of neighbour swaps; returns the beta = 1 chains."""
        if self.chains is None:
            raise RuntimeError("call init_chains(v) before step().")
        self.chains = [s.run(c, 1, generator) for s, c in zip(self.samplers, self.chains, strict=True)]
        for k in range(self.steps % 2, self.n_temperatures - 1, 2):
            self._swap(k, generator)
        self.steps += 1
        return self.chains[0]

    def run(self, steps: int, generator: Generator = None) -> list:
        """``steps`` >= 0 steps; returns the beta = 1 chains."""
        for _ in range(check_positive_int(steps, "steps", minimum=0)):
            self.step(generator)
        return self.chains[0]

    def _swap(self, k: int, generator: Generator) -> None:
        a, b = self.chains[k], self.chains[k + 1]
        e_a, e_b = self.model.joint_energy(a), self.model.joint_energy(b)
        log_ratio = (self.betas[k] - self.betas[k + 1]).to(e_a.dtype) * (e_a - e_b)
        n = e_a.shape[0]
        if isinstance(generator, RandomSource):
            u = generator.uniform((n,), e_a.dtype)
        else:
            u = torch.rand(n, generator=generator, device=e_a.device, dtype=e_a.dtype)
        accept = torch.log(u) < log_ratio  # u in [0, 1): log u <= 0 always accepts a ratio >= 1
        mask = accept[:, None]
        self.chains[k] = [torch.where(mask, y, x) for x, y in zip(a, b, strict=True)]
        self.chains[k + 1] = [torch.where(mask, x, y) for x, y in zip(a, b, strict=True)]
        self.swaps_proposed[k] += n
        self.swaps_accepted[k] += int(accept.sum())

    def swap_rates(self) -> torch.Tensor:
        """Accepted / proposed swaps per neighbouring pair (NaN for pairs never proposed): (K - 1,)."""
        return self.swaps_accepted.double() / self.swaps_proposed.double()

    def state_dict(self) -> dict:
        chains = None if self.chains is None else [[c.detach().cpu().clone() for c in ch] for ch in self.chains]
        return {"betas": self.betas.clone(), "chains": chains, "steps": self.steps,
                "swaps_proposed": self.swaps_proposed.clone(), "swaps_accepted": self.swaps_accepted.clone()}

    def load_state_dict(self, state: dict) -> None:
        if not torch.equal(state["betas"].double(), self.betas):
            raise ValueError(f"saved parallel-tempering ladder {state['betas'].tolist()} differs from this one "
                             f"{self.betas.tolist()}.")
        m = self.model
        self.chains = None if state["chains"] is None else [
            [c.to(device=m.device, dtype=m.dtype) for c in ch] for ch in state["chains"]]
        self.steps = int(state["steps"])
        self.swaps_proposed = state["swaps_proposed"].clone()
        self.swaps_accepted = state["swaps_accepted"].clone()
