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

With ``adaptive=True`` the ladder tunes itself (``natural_bm.sampling.ladder``): every
``adapt_every`` steps, when a pair's swap rate since the last check lies outside ``band``, the ladder is
placed anew for the ``target`` rate (``place_ladder``: the gaps' thermodynamic lengths from the measured
rates, rungs added where swaps stall, removed where they are more frequent than needed, every gap at the
target's length but the hottest, which ends at the starting ladder's hottest beta and may swap more
often), and each new rung takes the chains of the old rung nearest to it in log beta. ``tune``
runs such rounds until the rates sit in the band, before sampling; during a run (training, where the
model changes) the checks keep the ladder following the model. The ladder, the chains and the counts go
through ``state_dict``, so a resumed run continues bit-identically. While the ladder still changes the
chains are not a fixed Markov chain (each change is a move to a new product of tempered
distributions); once the rates sit in the band it stays put.
"""

from __future__ import annotations

import torch

from natural_bm.rng import RandomSource
from natural_bm.sampling.gibbs import GibbsSampler
from natural_bm.sampling.ladder import check_band, place_ladder
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
        betas: decreasing inverse temperatures starting at 1; default ``geometric_betas(n_temperatures,
            min_beta)`` (with ``adaptive``, the ladder it starts from).
        n_temperatures: rungs of the default ladder (10).
        min_beta: the hottest rung of the default ladder (0.1); an adapted ladder ends at the starting
            ladder's hottest rung.
        adaptive: correct the ladder from the measured swap rates every ``adapt_every`` steps (module
            docstring).
        target, band: the swap rate aimed at and the band of rates left alone (adaptive and ``tune``).
        adapt_every: steps between checks of the rates (adaptive; at least a few tens, so that every pair
            has been proposed enough times).
        max_temperatures: the most rungs an adapted ladder may have.

    Attributes:
        chains: one list of layer states per temperature (``chains[0]`` samples the model).
        swaps_proposed: (K - 1,) swaps proposed per neighbouring pair since the ladder last changed.
        swaps_accepted: (K - 1,) swaps accepted per pair, likewise; ``swap_rates()`` is their ratio.
        ladder_changes: how often the ladder was placed anew.
    """

    def __init__(self, model, betas=None, n_temperatures: int = 10, min_beta: float = 0.1, adaptive: bool = False,
                 target: float = 0.25, band: tuple[float, float] = (0.2, 0.3), adapt_every: int = 100,
                 max_temperatures: int = 64) -> None:
        self.model = model
        self.adaptive = bool(adaptive)
        self.target, self.band = check_band(target, band)
        self.adapt_every = check_positive_int(adapt_every, "adapt_every")
        self.max_temperatures = check_positive_int(max_temperatures, "max_temperatures", minimum=2)
        betas = geometric_betas(n_temperatures, min_beta) if betas is None else betas
        self._set_ladder(torch.as_tensor(betas, dtype=torch.float64))
        self.min_beta = float(self.betas[-1])  # where an adapted ladder ends
        self.chains: list | None = None
        self.steps = 0
        self.ladder_changes = 0

    def _set_ladder(self, betas: torch.Tensor) -> None:
        """Take ``betas`` as the ladder (checked), with fresh samplers and zero swap counts."""
        if betas.ndim != 1 or len(betas) < 2 or float(betas[0]) != 1.0 or bool((betas[1:] >= betas[:-1]).any()) \
                or float(betas[-1]) <= 0:
            raise ValueError(f"`betas` must decrease from 1 to a value > 0 (at least two), got {betas.tolist()}.")
        self.betas = betas
        self.samplers = [GibbsSampler(self.model, float(b)) for b in betas]
        n = len(betas) - 1
        self.swaps_proposed = torch.zeros(n, dtype=torch.int64)
        self.swaps_accepted = torch.zeros(n, dtype=torch.int64)
        self._window = (torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64))

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
        if self.adaptive and self.steps % self.adapt_every == 0:
            self.adapt()
        return self.chains[0]

    def window_rates(self) -> torch.Tensor:
        """Accepted / proposed swaps per neighbouring pair since the last check (NaN where none): (K - 1,)."""
        proposed, accepted = self._window
        return accepted.double() / proposed.double()

    def adapt(self) -> bool:
        """Check the rates since the last check: when one lies outside ``band``, place the ladder anew
        (``place_ladder``; the hottest pair may lie above the band) and give each new rung the chains of
        the nearest old rung in log beta. Returns whether the ladder changed."""
        rates = self.window_rates()
        self._window = (torch.zeros_like(self._window[0]), torch.zeros_like(self._window[1]))
        lo, hi = self.band
        inside = torch.isnan(rates) | ((rates >= lo) & (rates <= hi))
        inside[-1] |= bool(rates[-1] > hi)  # the hottest gap is the rest of the length: it may swap more often
        if bool(inside.all()):
            return False
        betas = place_ladder(self.betas, rates, self.target, self.max_temperatures, min_beta=self.min_beta)
        nearest = (torch.log(betas)[:, None] - torch.log(self.betas)[None, :]).abs().argmin(1).tolist()
        chains = self.chains
        self._set_ladder(betas)
        self.chains = [[c.clone() for c in chains[k]] for k in nearest]
        self.ladder_changes += 1
        return True

    def tune(self, steps: int = 200, max_rounds: int = 10, generator: Generator = None) -> torch.Tensor:
        """Rounds of ``steps`` steps, each followed by ``adapt``, until the rates of a round sit in ``band``
        (or ``max_rounds`` rounds); returns the ladder. The chains must be started (``init_chains``)."""
        if self.chains is None:
            raise RuntimeError("call init_chains(v) before tune().")
        steps = check_positive_int(steps, "steps")
        self._window = (torch.zeros_like(self._window[0]), torch.zeros_like(self._window[1]))
        adaptive, self.adaptive = self.adaptive, False  # the rounds check the rates themselves
        try:
            for _ in range(check_positive_int(max_rounds, "max_rounds")):
                self.run(steps, generator)
                if not self.adapt():
                    break
        finally:
            self.adaptive = adaptive
        return self.betas

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
        n_accepted = int(accept.sum())
        self.swaps_proposed[k] += n
        self.swaps_accepted[k] += n_accepted
        self._window[0][k] += n
        self._window[1][k] += n_accepted

    def swap_rates(self) -> torch.Tensor:
        """Accepted / proposed swaps per neighbouring pair (NaN for pairs never proposed): (K - 1,)."""
        return self.swaps_accepted.double() / self.swaps_proposed.double()

    def state_dict(self) -> dict:
        chains = None if self.chains is None else [[c.detach().cpu().clone() for c in ch] for ch in self.chains]
        return {"betas": self.betas.clone(), "chains": chains, "steps": self.steps,
                "swaps_proposed": self.swaps_proposed.clone(), "swaps_accepted": self.swaps_accepted.clone(),
                "window": (self._window[0].clone(), self._window[1].clone()), "ladder_changes": self.ladder_changes}

    def load_state_dict(self, state: dict) -> None:
        saved = state["betas"].double()
        if self.adaptive:  # the ladder is part of the state
            self._set_ladder(saved.clone())
        elif not torch.equal(saved, self.betas):
            raise ValueError(f"saved parallel-tempering ladder {state['betas'].tolist()} differs from this one "
                             f"{self.betas.tolist()}; build the sampler with the saved betas, or with adaptive=True.")
        m = self.model
        self.chains = None if state["chains"] is None else [
            [c.to(device=m.device, dtype=m.dtype) for c in ch] for ch in state["chains"]]
        self.steps = int(state["steps"])
        self.swaps_proposed = state["swaps_proposed"].clone()
        self.swaps_accepted = state["swaps_accepted"].clone()
        window = state.get("window")  # (absent from files before the adaptive ladder)
        self._window = (torch.zeros_like(self.swaps_proposed), torch.zeros_like(self.swaps_accepted)) \
            if window is None else (window[0].clone(), window[1].clone())
        self.ladder_changes = int(state.get("ladder_changes", 0))
