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

A rank that dies or stops answering. Every collective of natural_bm (``barrier``, ``all_gather_rows``,
``all_reduce_sum``) waits at most the group's timeout, ``$NATURAL_BM_COLLECTIVE_TIMEOUT`` seconds (60 by
default; ``init_from_environment(timeout=...)``), for the other ranks. A peer whose process ended
fails the collective at once (its connections close); one that stopped answering (a frozen process, a
lost machine) fails it after the timeout. Either way the collective raises ``LostRankError``, a
``ConnectionError`` with one line naming the lost rank ("rank 1 of 2 stopped answering (its process
ended); ..."), found from the host and process id every rank registered when the group started; and
every later collective of this process raises it again at once, so clean-up code that gathers chains
does not wait another timeout. The results folder keeps its last checkpoint (rank 0 writes files
atomically, at epoch ends), which ``--resume`` continues.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import socket
import time
from collections.abc import Iterator

import torch

from natural_bm.rng import RandomSource

__all__ = ["DEFAULT_COLLECTIVE_TIMEOUT_S", "ENV_COLLECTIVE_TIMEOUT", "LostRankError", "ShardedSource",
           "all_gather_rows", "all_reduce_sum", "barrier", "collective_timeout", "init_from_environment",
           "is_distributed", "rank", "shard_bounds", "world_size"]

#: the environment variable that holds the seconds a collective waits for the other ranks
ENV_COLLECTIVE_TIMEOUT = "NATURAL_BM_COLLECTIVE_TIMEOUT"
#: its default, in seconds
DEFAULT_COLLECTIVE_TIMEOUT_S = 60.0

#: words of the backends' errors for a peer that went away (gloo, NCCL, the TCP store), lower case
_PEER_FAILURE_WORDS = ("connection closed", "connection reset", "closed by peer", "broken pipe", "timed out",
                       "timeout", "connection refused", "socket closed", "read error", "write error",
                       "communicator was aborted", "ncclremoteerror", "ncclsystemerror", "remote worker")

_state: dict = {"timeout_s": None, "peers": None, "lost": None}


class LostRankError(ConnectionError):
    """A rank of the process group died or stopped answering during a collective.

    Args:
        ranks: the lost ranks (empty when they could not be told apart, e.g. on other machines).
        world_size: ranks in the group.
        seconds: the collective timeout the group runs with.
        how: what was seen, in a few words ("its process ended", "no reply within 60 s").

    The message is one line, e.g. "rank 1 of 2 stopped answering (its process ended); ...".
    """

    def __init__(self, ranks: list[int], world_size: int, seconds: float, how: str) -> None:
        self.ranks, self.world_size, self.seconds, self.how = list(ranks), int(world_size), float(seconds), how
        if not self.ranks:
            who = "a rank"
        else:
            who = ("rank " if len(self.ranks) == 1 else "ranks ") + ", ".join(str(r) for r in self.ranks)
        super().__init__(f"{who} of {self.world_size} stopped answering ({how}); this rank stops too. Start the "
                         f"job again with --resume to continue from the last checkpoint (collective timeout "
                         f"{self.seconds:g} s, ${ENV_COLLECTIVE_TIMEOUT}).")

    def __reduce__(self):
        return type(self), (self.ranks, self.world_size, self.seconds, self.how)


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


def collective_timeout(seconds: float | None = None) -> float:
    """The collective timeout in seconds: ``seconds`` if given, else ``$NATURAL_BM_COLLECTIVE_TIMEOUT``, else 60.

    Raises ValueError (naming the setting) unless it is a positive finite number.
    """
    where = "`timeout`"
    if seconds is None:
        text = os.environ.get(ENV_COLLECTIVE_TIMEOUT, "").strip()
        if not text:
            return DEFAULT_COLLECTIVE_TIMEOUT_S
        where, seconds = f"${ENV_COLLECTIVE_TIMEOUT}", text
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(seconds, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where} must be a positive number of seconds (the time a collective waits for the "
                         f"other ranks; default {DEFAULT_COLLECTIVE_TIMEOUT_S:g}), got {seconds!r}.")
    return value


def init_from_environment(backend: str | None = None, timeout: float | None = None) -> bool:
    """Start the process group from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...)
    unless it runs already or the variables are absent; gloo on CPUs, NCCL when CUDA is available.

    Args:
        backend: "gloo" or "nccl" (default: by the device, as above).
        timeout: seconds a collective waits for the other ranks before it raises ``LostRankError``
            (default ``collective_timeout()``: ``$NATURAL_BM_COLLECTIVE_TIMEOUT`` or 60).

    Returns whether a multi-rank group is running. Raises ValueError for a bad timeout.
    """
    if torch.distributed.is_available() and not torch.distributed.is_initialized() and "WORLD_SIZE" in os.environ:
        seconds = collective_timeout(timeout)
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=seconds))
        _state.update(timeout_s=seconds, peers=None, lost=None)
        if is_distributed():  # who runs where: to name a rank that stops answering
            peers: list = [None] * world_size()
            with _answering():
                torch.distributed.all_gather_object(peers, (_machine(), os.getpid()))
            _state["peers"] = peers
    return is_distributed()


def barrier() -> None:
    """Wait for every rank (no-op without a process group); ``LostRankError`` if one stops answering."""
    if is_distributed():
        with _answering():
            torch.distributed.barrier()


def _machine() -> str:
    """This machine, as told apart from the others of the group: host name and boot id."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def _process_state(pid: int) -> str:
    """"ended", "stopped" or "running": a process of this machine, read from /proc (or probed by a
    signal 0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return "ended"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "ended"
        except OSError:
            pass
        return "running"
    return {"Z": "ended", "X": "ended", "x": "ended", "T": "stopped", "t": "stopped"}.get(state, "running")


def _is_peer_failure(err: BaseException) -> bool:
    """Whether a collective's error says that another rank went away (rather than, say, a wrong shape)."""
    if isinstance(err, (torch.distributed.DistNetworkError, torch.distributed.DistStoreError)):
        return True
    text = str(err).lower()
    return any(word in text for word in _PEER_FAILURE_WORDS)


def _lost_rank_error(err: BaseException) -> LostRankError:
    """Which ranks are gone, judged from the processes of this machine, then from the group's size."""
    seconds = _state["timeout_s"] or DEFAULT_COLLECTIVE_TIMEOUT_S
    world, me = world_size(), rank()
    timed_out = "timed out" in str(err).lower() or "timeout" in str(err).lower()
    peers = _state["peers"] or []
    here = _machine()
    local = [(r, pid) for r, (machine, pid) in enumerate(peers) if r != me and machine == here]
    remote = [r for r, (machine, _) in enumerate(peers) if r != me and machine != here]
    for attempt in range(10):  # a killed peer closes its sockets a moment before /proc shows it ended
        states = {r: _process_state(pid) for r, pid in local}
        ended = [r for r, s in states.items() if s == "ended"]
        stopped = [r for r, s in states.items() if s == "stopped"]
        if ended or stopped or timed_out or attempt == 9:
            break
        time.sleep(0.05)
    no_reply = f"no reply within {seconds:g} s"
    if ended:
        return LostRankError(ended, world, seconds, "its process ended" if len(ended) == 1 else "their processes ended")
    if stopped:
        return LostRankError(stopped, world, seconds, f"{no_reply}; its process is stopped")
    if peers and not remote and world == 2 and timed_out:  # the other process runs: busy or stuck
        return LostRankError([1 - me], world, seconds, f"{no_reply}; its process still runs, stuck or busy for "
                                                       f"longer than the timeout")
    if len(remote) == 1 or (not peers and world == 2):
        lost = remote or [1 - me]
        return LostRankError(lost, world, seconds, no_reply if timed_out else "its connection closed")
    where = f"on another machine: one of ranks {', '.join(map(str, remote))}" if remote else "unknown"
    return LostRankError([], world, seconds, f"{no_reply if timed_out else 'a connection closed'}; {where}")


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    """Run a collective: a peer that went away raises ``LostRankError`` (and so does every later
    collective of this process, at once)."""
    lost = _state["lost"]
    if lost is not None:
        raise LostRankError(*lost)
    try:
        yield
    except RuntimeError as err:  # (torch.distributed's errors are RuntimeErrors)
        if not _is_peer_failure(err):
            raise
        error = _lost_rank_error(err)
        _state["lost"] = (error.ranks, error.world_size, error.seconds, error.how)
        raise error from err


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
    with _answering():
        torch.distributed.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.int64))
    sizes = [int(s) for s in sizes]
    rows = max(sizes)
    device = x.device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
    padded = torch.zeros((rows, *x.shape[1:]), dtype=x.dtype, device=device)
    padded[: x.shape[0]] = x.to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    with _answering():
        torch.distributed.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)]).to(x.device)


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    """Sum each tensor over the ranks, in place: one flat all-reduce in the first tensor's dtype (a
    784-500 RBM's update in float32: 393,285 numbers, 1.57 MB). No-op without a process group."""
    if not is_distributed() or not tensors:
        return
    device = tensors[0].device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
    flat = torch.cat([t.reshape(-1).to(device=device, dtype=tensors[0].dtype) for t in tensors])
    with _answering():
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

    def fills_in_sequence(self) -> bool:
        return False  # (a draw's first dimension names the rows it is made for)

    def uniform_(self, out: torch.Tensor) -> torch.Tensor:
        if out.dim() and out.shape[0] in self.rows:  # this rank's rows of a global draw
            return out.copy_(self.uniform(out.shape, out.dtype))
        return super().uniform_(out)
