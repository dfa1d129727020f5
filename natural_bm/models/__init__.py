"""Models: parameters and maths (energies, conditionals, free energies)."""

from natural_bm.models.base import BoltzmannMachine, load_model
from natural_bm.models.dbm import DBM
from natural_bm.models.rbm import RBM

__all__ = ["BoltzmannMachine", "DBM", "RBM", "load_model"]
