"""natural_bm: restricted and deep Boltzmann machines in PyTorch.

Quick start::

    from natural_bm import RBM
    from natural_bm.datasets import load_mnist
    data = load_mnist()
    rbm = RBM(784, 500).init_from_data(data.train)
    rbm.compile(optimizer="sgd", algorithm="pcd", n_chains=100)
    history = rbm.fit(data.train, batch_size=100, epochs=5, validation_data=data.valid)
"""


from __future__ import annotations

import importlib

__version__ = "0.2.0"
__all__ = ["DBM", "DBN", "RBM", "BoltzmannMachine", "LayeredBM", "load_model", "SGD", "Adam", "Trainer",
           "GibbsSampler", "ParallelTempering", "__version__"]

# Names are loaded on first use (PEP 562), so that importing one layer of the
# package (natural_bm.models, natural_bm.estimators, ...) loads only that
# layer and the ones below it: core -> models -> sampling / training /
# estimators -> callbacks -> run and cli. The models' Keras-style facade (model.compile, fit, evaluate,
# transform) reaches the training layer through ``natural_bm.Trainer`` here, and model.sample the
# samplers through ``natural_bm.GibbsSampler``/``ParallelTempering``, so natural_bm.models imports
# nothing above it.
_LAZY = {"DBM": "natural_bm.models", "DBN": "natural_bm.models",
         "RBM": "natural_bm.models", "BoltzmannMachine": "natural_bm.models",
         "LayeredBM": "natural_bm.models", "load_model": "natural_bm.models", "SGD": "natural_bm.training",
         "Adam": "natural_bm.training", "Trainer": "natural_bm.training",
         "GibbsSampler": "natural_bm.sampling", "ParallelTempering": "natural_bm.sampling"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'natural_bm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
