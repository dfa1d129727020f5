"""Samplers: Markov chains of a model's states: block Gibbs and parallel tempering."""

from natural_bm.sampling.gibbs import GibbsSampler, chains_to
from natural_bm.sampling.ladder import place_ladder
from natural_bm.sampling.tempering import ParallelTempering, geometric_betas

__all__ = ["GibbsSampler", "ParallelTempering", "chains_to", "geometric_betas", "place_ladder"]
