"""``CallbackList``: calls every callback's hook, and times them."""

from __future__ import annotations

import collections
import statistics
import time

from natural_bm.callbacks.callback import Callback, host_logs, overrides, reads_batch_ends
from natural_bm.validation import warn_user


class CallbackList:
    """A container that forwards each hook to every callback, in order (a batch hook to those that
    override it: the others would do nothing, every update).

    Batch-end logs may hold device tensors (``fit``'s loss): they are turned into floats, in
    place and once, just before the first callback that overrides the hook and wants floats
    (``Callback.batch_logs_on_device`` False); so callbacks that do not handle batch ends,
    and those that take device values, cost no host round-trip.

    It keeps, for each batch hook, the last ``queue_length`` durations of each
    callback and of the batch itself (time between the end of
    ``on_*_batch_begin`` and the start of ``on_*_batch_end``). When the median
    duration of a callback's hook exceeds ``slow_ratio`` times the median batch
    time and ``min_slow_seconds``, it warns once per callback and hook, naming
    both (checked at calls that themselves took longer than ``min_slow_seconds``,
    so a fast batch costs no median).

    Attributes:
        timings: {(callback class name, hook): deque of seconds}.
        batch_times: deque of batch durations in seconds.
    """

    def __init__(
        self,
        callbacks: list[Callback] | None = None,
        queue_length: int = 10,
        slow_ratio: float = 0.95,
        min_slow_seconds: float = 0.1,
    ) -> None:
        self.callbacks = list(callbacks or [])
        self.queue_length = int(queue_length)
        self.slow_ratio = slow_ratio
        self.min_slow_seconds = min_slow_seconds
        self.timings: dict[tuple[str, str], collections.deque] = {}
        self.batch_times: collections.deque = collections.deque(maxlen=self.queue_length)
        self._batch_start: float | None = None
        self._warned: set[tuple[str, str]] = set()
        self._needs_floats: dict[int, bool] = {}  # id(callback) -> takes batch-end logs as floats (cached)
        self._callers: dict[str, list[Callback]] = {}  # batch hook -> the callbacks that override it (cached)
        self.params: dict = {}
        self.model = None
        for cb in self.callbacks:
            cb.callback_list = self

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        callback.callback_list = self
        self._callers = {}

    def _overriding(self, hook: str) -> list[Callback]:
        """The callbacks that do something in the batch hook ``hook``, in order (the others are not called:
        a batch hook runs every update, and most callbacks act once an epoch)."""
        callers = self._callers.get(hook)
        if callers is None:
            callers = self._callers[hook] = [cb for cb in self.callbacks if overrides(cb, hook)]
        return callers

    def state_dict(self) -> dict[str, dict]:
        """``{key: state}`` of every callback with state (keys from ``callback_keys``)."""
        return callback_states(self.callbacks)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def set_params(self, params: dict) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    # ------------------------------------------------------------ hooks (one method each, as Keras's)
    def on_train_begin(self, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(logs)
        apply_restored_states(self.callbacks)  # checkpointed state goes back after on_train_begin's reset

    def on_train_end(self, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._batch_begin("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batch_end("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_begin(logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_end(logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._batch_begin("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batch_end("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_predict_begin(logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        for cb in self.callbacks:
            cb.on_predict_end(logs)

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._batch_begin("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batch_end("on_predict_batch_end", batch, logs)

    # the old Keras names of the training batch hooks
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_train_batch_begin(batch, logs)

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_train_batch_end(batch, logs)

    def _batch_begin(self, hook: str, batch: int, logs: dict | None) -> None:
        """A batch-begin hook of every callback that overrides it, timed; the batch's own time starts after it."""
        for cb in self._overriding(hook):
            t0 = time.perf_counter()
            getattr(cb, hook)(batch, logs)
            self._record(cb, hook, time.perf_counter() - t0)
        self._batch_start = time.perf_counter()

    def _batch_end(self, hook: str, batch: int, logs: dict | None) -> None:
        """A batch-end hook of every callback that overrides it, timed; the logs' device tensors become
        floats just before the first callback that wants floats."""
        if self._batch_start is not None:
            self.batch_times.append(time.perf_counter() - self._batch_start)
        on_host = False
        for cb in self._overriding(hook):
            if not on_host and self._wants_floats(cb):
                on_host = _logs_to_host((batch, logs))
            t0 = time.perf_counter()
            getattr(cb, hook)(batch, logs)
            self._record(cb, hook, time.perf_counter() - t0)

    def _wants_floats(self, cb: Callback) -> bool:
        """Whether ``cb`` reads batch-end logs and wants them as floats (looked up once per callback)."""
        wants = self._needs_floats.get(id(cb))
        if wants is None:
            wants = self._needs_floats[id(cb)] = not cb.batch_logs_on_device and reads_batch_ends(cb)
        return wants

    def _record(self, cb: Callback, hook: str, seconds: float) -> None:
        key = (type(cb).__name__, hook)
        q = self.timings.get(key)
        if q is None:
            q = self.timings[key] = collections.deque(maxlen=self.queue_length)
        q.append(seconds)
        if seconds <= self.min_slow_seconds or key in self._warned or not self.batch_times:
            return  # (a fast call cannot be the one that makes the median slow: no medians per batch)
        hook_median = statistics.median(q)
        batch_median = statistics.median(self.batch_times)
        if hook_median > self.min_slow_seconds and hook_median > self.slow_ratio * batch_median:
            self._warned.add(key)
            warn_user(
                f"{key[0]}.{hook}() is slow compared to the batch update "
                f"(median {hook_median:.4f} s vs {batch_median:.4f} s per batch). "
                "Check your callbacks.",
                RuntimeWarning
            )


def _logs_to_host(args: tuple) -> bool:
    """Turn the tensors of a batch hook's logs (``args[1]``) into floats in place; True."""
    if len(args) > 1 and args[1]:
        args[1].update(host_logs(args[1]))
    return True


def callback_keys(callbacks) -> list[str]:
    """A key per callback, ``ClassName`` or ``ClassName:n`` for the n-th (n >= 1) of a class.

    Keys depend only on the order of callbacks of the same class, which
    ``fit``'s ordering keeps, so a checkpoint's states find their callbacks in
    a run built from the same config.
    """
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        n = seen.get(name, 0)
        seen[name] = n + 1
        keys.append(name if n == 0 else f"{name}:{n}")
    return keys


def callback_states(callbacks) -> dict[str, dict]:
    """``{key: cb.state_dict()}`` for the callbacks whose state is not empty."""
    callbacks = list(callbacks)
    out = {}
    for key, cb in zip(callback_keys(callbacks), callbacks, strict=True):
        state = cb.state_dict()
        if state:
            out[key] = state
    return out


def restore_callback_states(callbacks, states: dict[str, dict] | None, droppable=()) -> list[str]:
    """Give each callback its saved state (``callback_states``) after its next ``on_train_begin``.

    ``droppable``: class names whose saved states may find no callback (callbacks a resumed run may
    switch off, e.g. the trajectory AIS); those states are dropped and their keys returned.
    Raises ValueError when another saved state has no callback of that class and
    position: the run was built differently from the one that saved it.
    """
    callbacks = list(callbacks)
    states = dict(states or {})
    for key, cb in zip(callback_keys(callbacks), callbacks, strict=True):
        if key in states:
            cb.restore_state(states.pop(key))
    droppable = set(droppable)
    dropped = sorted(k for k in states if k.split(":")[0] in droppable)
    for key in dropped:
        del states[key]
    if states:
        raise ValueError(f"the checkpoint holds the state of callbacks {sorted(states)} that this run does not "
                         "have; resume with the callbacks of the run that saved it.")
    return dropped


def apply_restored_states(callbacks, model=None) -> None:
    """Hand each callback the state ``restore_callback_states`` gave it (``CallbackList`` does this after
    ``on_train_begin``; a run whose training had ended calls it directly, with the ``model`` to set)."""
    for cb in callbacks:
        pending = getattr(cb, "_pending_state", None)
        if pending is not None:
            if model is not None:
                cb.set_model(model)
            cb._pending_state = None
            cb.load_state_dict(pending)
