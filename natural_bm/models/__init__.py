"""Models: parameters and maths (energies, conditionals, free energies)."""

from natural_bm.models.base import BoltzmannMachine, load_model
from natural_bm.models.rbm import RBM

__all__ = ["BoltzmannMachine", "RBM", "load_model"]
