"""Models: parameters and maths (energies, conditionals, free energies).

``layered.LayeredBM`` is the core (layers of ``units`` joined by a bipartite
topology); ``RBM`` is its two-layer case and ``DBM`` the general one.
"""

from natural_bm.models.base import BoltzmannMachine
from natural_bm.models.dbm import DBM
from natural_bm.models.dbn import DBN
from natural_bm.models.layered import LayeredBM
from natural_bm.models.portable import export_model, load_model, read_portable
from natural_bm.models.rbm import RBM
from natural_bm.models.units import Bernoulli, Gaussian, Softmax, Units

__all__ = ["Bernoulli", "BoltzmannMachine", "DBM", "DBN", "Gaussian", "LayeredBM", "RBM", "Softmax", "Units",
           "export_model", "load_model", "read_portable"]
