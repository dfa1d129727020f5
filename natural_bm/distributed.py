"""Data parallelism on ``torch.distributed``: who this process is, which rows it owns, collectives.

natural_bm runs the same program on every rank (``torchrun --nproc-per-node N ...``; gloo on CPUs,
NCCL on GPUs). Rows are split into contiguous shards, rank r owning ``shard_bounds(n, r, world)``:
the runs of a sharded AIS, the rows of each minibatch and the persistent chains of data-parallel
training. Random numbers are drawn for the *global* rows and each rank keeps its own
(``ShardedSource``; counter-based uniforms are keyed by the global index), so a result does not
depend on the number of ranks, up to the order of floating-point reductions (bit for bit where there
are none, e.g. AIS log weights with one thread per process).

Without an initialised process group every function is the single-process identity: rank 0 of 1.
``init_from_environment()`` starts the group from torchrun's environment variables.
"""

from __future__ import annotations

import os

import torch

from natural_bm.rng import RandomSource

__all__ = ["ShardedSource", "all_gather_rows", "all_reduce_sum", "barrier", "init_from_environment", "is_distributed",
           "rank", "shard_bounds", "world_size"]


def is_distributed() -> bool:
    """Whether a torch.distributed process group with more than one rank is running."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() and world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def init_from_environment(backend: str | None = None) -> bool:
    """Start the process group from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...)
    unless it runs already or the variables are absent; gloo on CPUs, NCCL when CUDA is available.
    Returns whether a multi-rank group is running."""
    if torch.distributed.is_available() and not torch.distributed.is_initialized() and "WORLD_SIZE" in os.environ:
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return is_distributed()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_distributed():
        torch.distributed.barrier()


def shard_bounds(n: int, rank_: int | None = None, world: int | None = None, align: int = 1) -> tuple[int, int]:
    """Rows [lo, hi) of ``n`` that rank ``rank_`` of ``world`` owns: contiguous shards of whole blocks
    of ``align`` rows (the last block may be partial), whose block counts differ by at most one, the
    larger ones first. A rank may own no rows when there are fewer blocks than ranks.

    Why blocks: CPU kernels vectorise reductions across rows (4 or 8 rows per SIMD step, a scalar loop
    for the rest), so a row's rounding depends on its position in its tensor. Shards that start at
    multiples of 16 rows keep every row at the same position modulo 16 as in one process, and the
    per-row results bit-identical (measured for AIS; ``tests/test_distributed.py``)."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    blocks = -(-int(n) // align)
    base, extra = divmod(blocks, world)
    first = rank_ * base + min(rank_, extra)
    last = first + base + (1 if rank_ < extra else 0)
    return min(n, first * align), min(n, last * align)


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of ``x`` (its shard, (n_rank, ...)) stacked in rank order: the global tensor,
    on every rank. Shards may differ in size. Identity without a process group."""
    if not is_distributed():
        return x
    world = world_size()
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    torch.distributed.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.int64))
    sizes = [int(s) for s in sizes]
    rows = max(sizes)
    device = x.device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
    padded = torch.zeros((rows, *x.shape[1:]), dtype=x.dtype, device=device)
    padded[: x.shape[0]] = x.to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)]).to(x.device)


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    """Sum each tensor over the ranks, in place: one flat all-reduce in the first tensor's dtype (a
    784-500 RBM's update in float32: 393,285 numbers, 1.57 MB). No-op without a process group."""
    if not is_distributed() or not tensors:
        return
    device = tensors[0].device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
    flat = torch.cat([t.reshape(-1).to(device=device, dtype=tensors[0].dtype) for t in tensors])
    torch.distributed.all_reduce(flat)
    start = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[start : start + n].view(t.shape).to(dtype=t.dtype))
        start += n


class ShardedSource(RandomSource):
    """A ``RandomSource`` that draws for global rows and keeps this rank's.

    ``rows`` maps a local row count to (global row count, first global row): a draw whose first
    dimension is a mapped local count is made for the global rows, from the same stream on every
    rank, and sliced. Every other draw is made as asked. So the ranks consume their streams in step
    and each row gets the numbers it would get in a single process.
    """

    def __init__(self, seed: int | None = None, device: torch.device | str = "cpu") -> None:
        super().__init__(seed, device)
        self.rows: dict[int, tuple[int, int]] = {}

    def uniform(self, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        shape = tuple(shape)
        if shape and shape[0] in self.rows:
            total, lo = self.rows[shape[0]]
            return super().uniform((total, *shape[1:]), dtype)[lo : lo + shape[0]].contiguous()
        return super().uniform(shape, dtype)
