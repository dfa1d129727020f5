"""Parallel tempering as a training algorithm (``"pt"``): the negative phase from persistent chains at a
ladder of temperatures (``natural_bm.sampling.ParallelTempering``)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from natural_bm.sampling.tempering import ParallelTempering, geometric_betas
from natural_bm.training.algorithms import Algorithm, StepInfo, initial_states
from natural_bm.validation import check_positive_int

__all__ = ["ParallelTemperingAlgorithm", "TemperingState"]


class TemperingState(NamedTuple):
    """Parallel tempering's state.

    Attributes:
        sampler: the ``ParallelTempering`` sampler, whose ``chains`` (one list of layer states per
            temperature) and swap counts are the Markov chains' state.
        epoch_counts: (proposed, accepted) swap counts at the last epoch's end, or None before the first
            epoch ended (each epoch logs the swap rates since then).
    """

    sampler: ParallelTempering
    epoch_counts: tuple | None = None



class ParallelTemperingAlgorithm(Algorithm):
    """Parallel tempering (``"pt"``): the negative phase from persistent chains at K temperatures.

    ``n_chains`` chains run at each inverse temperature of ``betas`` (default: ``n_temperatures``
    geometrically spaced from 1 to ``min_beta``); every update advances them ``k`` steps of
    ``natural_bm.sampling.ParallelTempering`` (a sweep at every temperature, then neighbour swaps) and
    takes the negative statistics from the beta = 1 chains. The positive phase is the exact posterior
    for two layers, mean-field (``mf_steps``) for deeper models. Each epoch logs the swap rate of each
    neighbouring pair (``swap_rate_<k>``, since the last epoch), to judge the ladder.

    ``adaptive=True`` lets the ladder tune itself (``ParallelTempering(adaptive=True)``): it is re-placed
    whenever a pair's swap rate leaves ``band`` (around ``target``), adding rungs where swaps stall. The
    number of pairs can then change during training, so each epoch logs ``swap_rate_min``,
    ``swap_rate_max`` and ``n_temperatures`` instead of one column per pair. An adaptive ladder trains in
    one process (each rank would tune its own).
    """

    name = "pt"
    supports_clamp = True

    def __init__(self, k: int = 1, n_chains: int = 100, n_temperatures: int = 10, min_beta: float = 0.1,
                 betas=None, mf_steps: int = 10, adaptive: bool = False, target: float = 0.25) -> None:
        self.adaptive, self.target = bool(adaptive), float(target)
        self.supports_data_parallel = not self.adaptive
        self.k = check_positive_int(k, "k")
        self.n_chains = check_positive_int(n_chains, "n_chains")
        self.mf_steps = check_positive_int(mf_steps, "mf_steps")
        self.betas = (geometric_betas(n_temperatures, min_beta) if betas is None
                      else torch.as_tensor(betas, dtype=torch.float64))

    def persistent_rows(self) -> int:
        return self.n_chains

    def get_config(self) -> dict:
        config = {"name": self.name, "k": self.k, "n_chains": self.n_chains, "betas": self.betas.tolist(),
                  "mf_steps": self.mf_steps}
        return config | ({"adaptive": True, "target": self.target} if self.adaptive else {})

    def _sampler(self, model) -> ParallelTempering:
        if not self.adaptive:
            return ParallelTempering(model, self.betas)
        band = (min(0.2, self.target), max(0.3, self.target))
        return ParallelTempering(model, self.betas, adaptive=True, target=self.target, band=band)

    def init(self, model, data, generator) -> TemperingState:
        sampler = self._sampler(model)
        sampler.init_chains(initial_states(model, data, self.n_chains, generator), generator)
        return TemperingState(sampler)

    def state_is_usable(self, model, state) -> bool:
        return state is not None and state.sampler.model is model and state.sampler.chains is not None

    def step(self, model, v, state, generator, clamp=None):
        mu, _ = model.mean_field(v, max_steps=1 if model.n_layers == 2 else self.mf_steps, clamp=clamp)
        loss = model.reconstruction_error_from_means(v, mu, generator)
        pos = model.sufficient_statistics(mu)
        neg = model.sufficient_statistics(state.sampler.run(self.k, generator))
        return {name: pos[name] - neg[name] for name in pos}, StepInfo(loss, mu), state

    def model_chains(self, state):
        if state is None or state.sampler.chains is None:
            return None
        return state.sampler.chains[0]

    def epoch_logs(self, state, reduce_counts=None) -> tuple[dict[str, float], Any]:
        """The swap rate of each neighbouring pair since the last epoch's end, over every rank's chains
        (``reduce_counts`` sums this rank's counts with the others' in data-parallel runs)."""
        if state is None:
            return {}, state
        s = state.sampler
        counts = (s.swaps_proposed.clone(), s.swaps_accepted.clone())
        prev = state.epoch_counts or (torch.zeros_like(counts[0]), torch.zeros_like(counts[1]))
        if prev[0].shape != counts[0].shape:  # the adaptive ladder changed its rungs (and zeroed its counts)
            prev = (torch.zeros_like(counts[0]), torch.zeros_like(counts[1]))
        proposed, accepted = counts[0] - prev[0], counts[1] - prev[1]
        if reduce_counts is not None:
            proposed, accepted = reduce_counts([proposed, accepted])
        rates = [float(accepted[k]) / float(proposed[k]) if proposed[k] else math.nan for k in range(len(proposed))]
        if self.adaptive:
            seen = [r for r in rates if not math.isnan(r)]
            logs = {"swap_rate_min": min(seen, default=math.nan), "swap_rate_max": max(seen, default=math.nan),
                    "n_temperatures": float(len(s.betas))}
        else:
            logs = {f"swap_rate_{k}": r for k, r in enumerate(rates)}
        return logs, state._replace(epoch_counts=counts)

    def state_dict(self, state) -> dict:
        # with the swap counts at the last epoch's end, so a resumed epoch logs its own swap rates
        return {"config": self.get_config(), "sampler": None if state is None else state.sampler.state_dict(),
                "epoch_counts": None if state is None else state.epoch_counts}

    def load_state(self, model, saved: dict):
        if saved.get("sampler") is None:
            return None
        sampler = self._sampler(model)
        sampler.load_state_dict(saved["sampler"])
        counts = saved.get("epoch_counts")  # (absent from files before it was saved)
        return TemperingState(sampler, None if counts is None else (counts[0].clone(), counts[1].clone()))
