"""Data-parallel training on torch.distributed: how ``fit`` splits minibatches and combines gradients.

Every rank runs the same fit loop on the same data, shuffled by the same seeded permutation. Of each
global minibatch of B rows, rank r takes rows ``shard_bounds(B, r)`` (b_r rows), and of the C
persistent chains it keeps ``shard_bounds(C, r)`` (c_r chains). Random numbers for these rows are
drawn for all B (or C) rows from the shared stream and sliced (``distributed.ShardedSource``), so
each row is sampled as in a single process. Each rank's algorithm returns the mean statistics of
its rows; they are combined as sum_r (b_r / B) grad_r with one all-reduce (the sufficient statistics,
positive minus negative, of ``sum(parameter sizes)`` numbers per update), after which every rank
takes the same optimiser step and the parameters stay identical. The combination is the global
gradient exactly when the chains are shared in the same proportions as the batch rows (B and C
divisible by the number of ranks; CD always); otherwise the negative phase is weighted by rows.

Checkpoints hold the global chains (gathered from every rank) and the one shared random state, so a
run resumes with any number of ranks. Files are written by rank 0 (``natural_bm.io``).

This module alone knows how an algorithm's state is shared: the rows of its persistent chains
(``ChainState.chains``; for parallel tempering, every temperature's chains) are sharded; parallel
tempering's swap counts are kept by rank 0 and counted from zero by the others, and summed.
"""

from __future__ import annotations

import copy

import torch

from natural_bm import distributed as dist
from natural_bm.training.algorithms import ChainState
from natural_bm.training.tempering import TemperingState

__all__ = ["DataParallel"]


class DataParallel:
    """The share of rank ``dist.rank()`` of every minibatch and of the persistent chains.

    Args:
        trainer: the ``Trainer`` of the model being trained.
        n: rows of the training data.
        batch_size: rows of a global minibatch.
        gen: the fit loop's ``ShardedSource``.
    """

    def __init__(self, trainer, n: int, batch_size: int, gen: dist.ShardedSource) -> None:
        self.world, self.rank, self.gen = dist.world_size(), dist.rank(), gen
        alg = trainer.algorithm
        if not alg.supports_data_parallel:
            raise ValueError(f"the {alg.name!r} algorithm does not train data-parallel yet; use 'cd', 'pcd' or "
                             f"'mfpcd', or run one process.")
        if trainer.runs_compiled_steps():
            raise ValueError("data-parallel training runs the eager steps (the compiled RBM steps draw their "
                             "numbers per whole batch): compile the model with jit_compile=False.")
        chains = alg.persistent_rows()
        self.chain_rows = None if chains is None else dist.shard_bounds(chains, self.rank, self.world)
        if self.chain_rows is not None and self.chain_rows[1] == self.chain_rows[0]:
            raise ValueError(f"{chains} persistent chains cannot be shared by {self.world} ranks; use at least "
                             f"one chain per rank.")
        self.maps = {}
        for size in sorted({batch_size, n % batch_size} - {0}):
            lo, hi = dist.shard_bounds(size, self.rank, self.world)
            if hi == lo:
                raise ValueError(f"a minibatch of {size} rows cannot be shared by {self.world} ranks; use a "
                                 f"batch_size (and data size) of at least one row per rank.")
            rows = {hi - lo: (size, lo)}
            if self.chain_rows is not None:
                c_lo, c_hi = self.chain_rows
                if c_hi - c_lo in rows and rows[c_hi - c_lo] != (chains, c_lo):
                    raise ValueError(f"with {self.world} ranks, a minibatch of {size} rows and {chains} chains "
                                     f"give shares of the same size ({hi - lo}) at different rows, which the "
                                     f"random draws cannot tell apart; make n_chains equal to batch_size or "
                                     f"choose sizes whose shares differ.")
                rows[c_hi - c_lo] = (chains, c_lo)
            self.maps[size] = ((lo, hi), rows)

    def shard_state(self, state):
        """After the algorithm's ``init`` (global chains, drawn alike on every rank): this rank's share."""
        if self.chain_rows is None or state is None:
            return state
        lo, hi = self.chain_rows
        if isinstance(state, ChainState):
            return ChainState(_map_chains(state.chains, lambda c: c[lo:hi].clone()))
        if isinstance(state, TemperingState):
            s = state.sampler
            s.chains = [[c[lo:hi].clone() for c in ch] for ch in s.chains]
            counts = state.epoch_counts
            if self.rank != 0:  # rank 0 keeps the counts so far; the others count from zero
                s.swaps_proposed.zero_()
                s.swaps_accepted.zero_()
                if counts is not None:
                    counts = (torch.zeros_like(counts[0]), torch.zeros_like(counts[1]))
            return TemperingState(s, counts)
        raise TypeError(f"data-parallel training cannot share a {type(state).__name__}.")

    def global_state(self, state):
        """The state with every rank's chains (all-gathered in global order) and summed counts (a collective:
        every rank calls it)."""
        if self.chain_rows is None or state is None:
            return state
        if isinstance(state, ChainState):
            return ChainState(_map_chains(state.chains, dist.all_gather_rows))
        if isinstance(state, TemperingState):
            s = copy.copy(state.sampler)  # (a new object sharing the ladder; the rank's own stays sharded)
            s.chains = [[dist.all_gather_rows(c) for c in ch] for ch in state.sampler.chains]
            s.swaps_proposed, s.swaps_accepted = self.sum_counts([s.swaps_proposed, s.swaps_accepted])
            counts = None if state.epoch_counts is None else tuple(self.sum_counts(list(state.epoch_counts)))
            return TemperingState(s, counts)
        raise TypeError(f"data-parallel training cannot gather a {type(state).__name__}.")

    @staticmethod
    def sum_counts(counts: list) -> list:
        """Integer count tensors (int64) summed over the ranks (a collective)."""
        summed = [c.double() for c in counts]
        dist.all_reduce_sum(summed)
        return [c.round().to(torch.int64) for c in summed]

    def local(self, v: torch.Tensor, clamp: dict | None):
        """This rank's rows of the global minibatch ``v`` (and of the clamped layers), its weight
        b_r / B; the random source now draws for the global rows."""
        (lo, hi), rows = self.maps[v.shape[0]]
        self.gen.rows = rows
        clamp = None if clamp is None else {k: x[lo:hi] for k, x in clamp.items()}
        return v[lo:hi], clamp, (hi - lo) / v.shape[0]

    def combine(self, grads: dict, loss: torch.Tensor, weight: float, means: list | None):
        """The global gradient, mean loss and data means from this rank's (one all-reduce)."""
        self.gen.rows = {}
        names = list(grads)
        parts = [grads[k] * weight for k in names] + [loss.sum().reshape(1).to(grads[names[0]].dtype)]
        parts += [] if means is None else [m * weight for m in means]
        dist.all_reduce_sum(parts)
        global_grads = dict(zip(names, parts[: len(names)], strict=True))
        total_loss = parts[len(names)]
        return global_grads, total_loss, (None if means is None else parts[len(names) + 1:])


def _map_chains(chains, fn):
    """``fn`` applied to a chains tensor or to each layer's tensor of a list."""
    if isinstance(chains, torch.Tensor):
        return fn(chains)
    return [None if c is None else fn(c) for c in chains]
