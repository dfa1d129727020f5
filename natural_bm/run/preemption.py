"""Pre-emption: a scheduler's signal ends the run at the next update, resumable, with its own exit status.

SLURM, Kubernetes and spot machines send SIGTERM (or the signal a job asks for, often SIGUSR1) some
seconds before they kill a job. While ``Preemption`` is active, such a signal does not kill the process:

* during a fit, ``PreemptionStop`` (a callback) stops training after the current update: inside an
  epoch at once (that epoch gets no checkpoint; the previous epoch boundary is the one to resume from),
  at an epoch's last update after the epoch's end (its checkpoint written);
* anywhere else (loading data, the finishing evaluation) ``Preempted`` is raised at once: every file is
  written atomically, and ``--resume`` redoes what was cut off.

``natural-bm train`` then exits with ``EXIT_PREEMPTED`` (75, ``EX_TEMPFAIL``: try again), which a requeue
script tests (``scripts/slurm_requeue.sh``). Under ``torchrun`` the ranks agree on the update to stop
after (one all-reduce of a flag per update), so no rank waits in a collective for one that stopped.
"""

from __future__ import annotations

import signal
import threading

import torch

from natural_bm import distributed as dist
from natural_bm.callbacks import Callback

__all__ = ["DEFAULT_SIGNALS", "EXIT_PREEMPTED", "Preempted", "Preemption", "PreemptionStop", "signal_number"]

#: the exit status of a pre-empted ``natural-bm train`` (sysexits.h EX_TEMPFAIL: a temporary failure, retry)
EXIT_PREEMPTED = 75
DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")


class Preempted(Exception):
    """A pre-emption signal arrived outside the fit loop; the run continues with ``--resume``."""


def signal_number(name: str | int) -> signal.Signals:
    """The signal named ``name`` (``"SIGUSR2"``, ``"USR2"``, ``"usr2"``) or numbered ``name``.

    Raises:
        ValueError: not a signal this system has, or one a process cannot catch (SIGKILL, SIGSTOP).
    """
    text = str(name).strip().upper()
    try:
        sig = signal.Signals(int(text)) if text.isdigit() else signal.Signals[text if text.startswith("SIG")
                                                                             else "SIG" + text]
    except (KeyError, ValueError):
        raise ValueError(f"--signal {name!r} is not a signal of this system; e.g. SIGUSR1, SIGUSR2, SIGTERM.") from None
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        raise ValueError(f"--signal {sig.name} cannot be caught; a scheduler's warning signal is e.g. SIGUSR1.")
    return sig


class Preemption:
    """While active (``with Preemption(signals):``), the ``signals`` request a stop instead of killing.

    Attributes:
        requested: the name of the signal that asked for a stop, or None.
    """

    def __init__(self, signals=DEFAULT_SIGNALS) -> None:
        self.signals = [signal_number(s) for s in signals]
        self.requested: str | None = None
        self.in_fit = 0  # fits running (pre-training nests none: one at a time)
        self._previous: dict = {}

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():  # (signal handlers live in the main thread)
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        self.requested = signal.Signals(signum).name
        if not self.in_fit:
            raise Preempted(self.reason)

    @property
    def reason(self) -> str:
        """Why the run stopped, as ``results.json`` and the exit message say it."""
        return f"preempted by {self.requested}"

    def callback(self) -> PreemptionStop:
        """A callback that stops the fit it is given to when a signal arrives."""
        return PreemptionStop(self)


class PreemptionStop(Callback):
    """Stops ``fit`` after the update during which a pre-emption signal arrived (see the module docstring).

    It runs after every other callback (``order = 3``), so at an epoch's end the checkpoint is written
    before it stops the run.
    """

    order = 3
    batch_logs_on_device = True  # reads no batch values

    def __init__(self, preemption: Preemption) -> None:
        super().__init__()
        self.preemption = preemption

    def on_train_begin(self, logs=None):
        self.preemption.in_fit += 1

    def on_train_end(self, logs=None):
        self.preemption.in_fit -= 1

    def _agreed(self) -> bool:
        """Whether any rank has been signalled (every rank's own flag without a process group)."""
        if not dist.is_distributed():
            return self.preemption.requested is not None
        flag = torch.tensor([0.0 if self.preemption.requested is None else 1.0])
        dist.all_reduce_sum([flag])
        return bool(flag.item() > 0)

    def _stop(self) -> None:
        if self.preemption.requested is None:
            self.preemption.requested = "a signal on another rank"
        self.model.stop_training = True
        self.model.trainer.stop_reason = self.preemption.reason

    def on_train_batch_end(self, batch, logs=None):
        if batch < self.params.get("steps", 0) - 1 and self._agreed():
            self._stop()  # inside the epoch: at once (no checkpoint of this epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self._agreed():
            self._stop()  # after the epoch's checkpoint
