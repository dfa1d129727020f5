"""Training: the trainer, algorithms (CD-k, PCD-k, exact, mean-field PCD, tempering), optimisers, weight decay
and the fit loop."""

from natural_bm.training.algorithms import (
    Algorithm,
    ChainState,
    ContrastiveDivergence,
    ExactGradient,
    MeanFieldPersistent,
    PersistentContrastiveDivergence,
    StepInfo,
)
from natural_bm.training.optimizers import SGD, Adam, Optimizer, get_optimizer
from natural_bm.training.pretrain import pretrain_dbm, pretrain_dbn
from natural_bm.training.registry import get_algorithm
from natural_bm.training.regularizers import apply_weight_decay
from natural_bm.training.tempering import ParallelTemperingAlgorithm, TemperingState
from natural_bm.training.trainer import Trainer

__all__ = [
    "Adam",
    "Algorithm",
    "ChainState",
    "ContrastiveDivergence",
    "ExactGradient",
    "MeanFieldPersistent",
    "Optimizer",
    "ParallelTemperingAlgorithm",
    "PersistentContrastiveDivergence",
    "SGD",
    "StepInfo",
    "TemperingState",
    "Trainer",
    "apply_weight_decay",
    "get_algorithm",
    "get_optimizer",
    "pretrain_dbm",
    "pretrain_dbn",
]
