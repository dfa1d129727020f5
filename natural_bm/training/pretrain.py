"""Greedy layer-wise pre-training of a chain DBM from RBMs (Salakhutdinov & Hinton 2009).

Each pair of adjacent layers is trained as an RBM on the layer below's
hidden probabilities, with the RBM trainer of ``fit``. So that every layer's
input counts once when the RBMs are stacked into a DBM (where a hidden layer
hears both its neighbours):

* the bottom RBM doubles its bottom-up input (``up_factor=2``);
* the top RBM doubles its top-down input (``down_factor=2``);
* middle RBMs are trained with both inputs doubled and their weights are
  halved when composed.

The DBM gets the visible bias of the bottom RBM, each hidden layer the hidden
bias of the RBM below it, and every weight matrix from its RBM.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from natural_bm.models.rbm import RBM
from natural_bm.training.optimizers import SGD
from natural_bm.validation import as_data_tensor


def pretrain_dbm(
    dbm,
    x,
    epochs: int | Sequence[int] = 10,
    batch_size: int = 100,
    optimizer_factory=None,
    algorithm: str = "cd",
    seed: int = 0,
    verbose: int = 0,
    callbacks_factory=None,
    binarize: bool = False,
    restore=None,
    **algorithm_kwargs,
) -> list[RBM]:
    """Pre-train ``dbm`` (chain topology) in place from RBMs; returns the RBMs.

    Args:
        dbm: the ``DBM`` to initialise.
        x: training data (n, n_visible).
        epochs: epochs per RBM: one number for all, or one per RBM (bottom first).
        batch_size, algorithm, ``**algorithm_kwargs``: passed to each RBM's compile/fit.
        optimizer_factory: ``lambda layer: Optimizer`` (default: SGD lr 0.05, momentum 0.5).
        seed: RBM k uses seed + k.
        callbacks_factory: ``lambda layer: list of callbacks`` for each RBM's fit (schedules, loggers).
        binarize: each RBM's fit draws binary minibatches from its input probabilities (the grey
            levels for the first RBM, the hidden probabilities of the RBM below for the others),
            afresh for every minibatch, as ``fit(binarize=True)``.
        restore: ``lambda layer, rbm, callbacks: initial epoch`` to resume an interrupted
            pre-training: called for each RBM after it is compiled and its callbacks made, it may
            load a checkpoint into the RBM (weights, training state, the callbacks' states) and
            returns the epoch to continue at (0: from the start; the RBM's epoch count: done).
            Each RBM's fit reseeds every epoch from ``seed``, so a resumed pre-training is
            bit-identical to an uninterrupted one. ``natural-bm train`` checkpoints every epoch.
    """
    if dbm.edges != [(i, i + 1) for i in range(dbm.n_layers - 1)]:
        raise ValueError(f"greedy pre-training needs a chain topology, got edges {dbm.edges}.")
    n_pairs = dbm.n_layers - 1
    factors = []
    for i in range(n_pairs):
        bottom, top = i == 0, i == n_pairs - 1
        up = 1.0 if (top and not bottom) else 2.0
        down = 2.0 if (top and not bottom) or not (bottom or top) else 1.0
        factors.append((1.0, 1.0) if n_pairs == 1 else (up, down))  # a single RBM is the whole model
    rbms = [RBM(dbm.layer_sizes[i], dbm.layer_sizes[i + 1], seed=seed + i, device=dbm.device, dtype=dbm.dtype,
                up_factor=factors[i][0], down_factor=factors[i][1]) for i in range(n_pairs)]
    train_greedily(rbms, x, epochs, batch_size, optimizer_factory, algorithm, seed, verbose, callbacks_factory,
                   binarize, restore, **algorithm_kwargs)
    with torch.no_grad():
        for i, rbm in enumerate(rbms):
            middle = 0 < i < n_pairs - 1
            dbm.weight(i, i + 1).copy_(rbm.W * (0.5 if middle else 1.0))
            if i == 0:
                dbm.bias(0).copy_(rbm.vbias)
            dbm.bias(i + 1).copy_(rbm.hbias)
    return rbms


def pretrain_dbn(dbn, x, epochs: int | Sequence[int] = 10, batch_size: int = 100, optimizer_factory=None,
                 algorithm: str = "cd", seed: int = 0, verbose: int = 0, callbacks_factory=None,
                 binarize: bool = False, restore=None, **algorithm_kwargs):
    """Train the RBMs of ``dbn`` (a ``DBN``) greedily, in place, bottom first: each on the hidden
    probabilities of the one below (Hinton, Osindero & Teh 2006). Arguments as ``pretrain_dbm``."""
    train_greedily(list(dbn.rbms), x, epochs, batch_size, optimizer_factory, algorithm, seed, verbose,
                   callbacks_factory, binarize, restore, **algorithm_kwargs)
    return dbn


def train_greedily(rbms, x, epochs, batch_size, optimizer_factory, algorithm, seed, verbose, callbacks_factory,
                   binarize, restore=None, **algorithm_kwargs) -> None:
    """Fit ``rbms`` in turn, RBM i on the hidden probabilities of RBM i - 1 (RBM 0 on ``x``, its visible
    biases first set from the data); the greedy loop shared by DBM and DBN pre-training. ``restore``:
    as ``pretrain_dbm``'s."""
    n = len(rbms)
    per_rbm = [int(epochs)] * n if isinstance(epochs, numbers.Integral) else [int(e) for e in epochs]
    if len(per_rbm) != n or any(e < 0 for e in per_rbm):
        raise ValueError(f"`epochs` must be an integer >= 0 or a list of {n} of them (one per RBM, "
                         f"bottom first), got {epochs!r}.")
    data = as_data_tensor(x, "x", rbms[0].n_visible, device=rbms[0].device, dtype=rbms[0].dtype)
    for i, rbm in enumerate(rbms):
        if i == 0:
            rbm.init_from_data(data)
        opt = optimizer_factory(i) if optimizer_factory else SGD(0.05, momentum=0.5)
        rbm.compile(opt, algorithm, **algorithm_kwargs)
        cbs = callbacks_factory(i) if callbacks_factory else None
        initial = int(restore(i, rbm, cbs)) if restore is not None else 0
        if initial < per_rbm[i]:
            rbm.fit(data, batch_size=batch_size, epochs=per_rbm[i], callbacks=cbs, verbose=verbose, seed=seed + i,
                    binarize=binarize, initial_epoch=initial)
        with torch.no_grad():
            data = rbm.prob_h_given_v(data)
