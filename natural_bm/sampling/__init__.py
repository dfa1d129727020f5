"""Samplers: Markov chains of a model's states (block Gibbs now; parallel tempering plugs in here)."""

from natural_bm.sampling.gibbs import GibbsSampler, chains_to

__all__ = ["GibbsSampler", "chains_to"]
