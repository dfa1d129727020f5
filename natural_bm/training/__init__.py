"""Training: algorithms (CD-k, PCD-k), optimisers, weight decay and the fit loop."""

from natural_bm.training.algorithms import (
    Algorithm,
    ContrastiveDivergence,
    ExactGradient,
    MeanFieldPersistent,
    PersistentContrastiveDivergence,
    get_algorithm,
)
from natural_bm.training.optimizers import SGD, Adam, Optimizer, get_optimizer
from natural_bm.training.pretrain import pretrain_dbm, pretrain_dbn
from natural_bm.training.regularizers import apply_weight_decay

__all__ = [
    "Adam",
    "Algorithm",
    "ContrastiveDivergence",
    "ExactGradient",
    "MeanFieldPersistent",
    "Optimizer",
    "PersistentContrastiveDivergence",
    "SGD",
    "apply_weight_decay",
    "get_algorithm",
    "get_optimizer",
    "pretrain_dbm",
    "pretrain_dbn",
]
