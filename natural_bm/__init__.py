"""natural_bm: restricted and deep Boltzmann machines in PyTorch.

Quick start::

    from natural_bm import RBM
    from natural_bm.datasets import load_mnist
    data = load_mnist()
    rbm = RBM(784, 500).init_from_data(data.train)
    rbm.compile(optimizer="sgd", algorithm="pcd", n_chains=100)
    history = rbm.fit(data.train, batch_size=100, epochs=5, validation_data=data.valid)
"""

from natural_bm.models import DBM, RBM, BoltzmannMachine, load_model
from natural_bm.training import SGD, Adam

__version__ = "0.1.0"
__all__ = ["DBM", "RBM", "BoltzmannMachine", "load_model", "SGD", "Adam", "__version__"]
