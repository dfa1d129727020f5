"""The ``Callback`` base class: every hook of the Keras callback API."""

from __future__ import annotations

import torch

from natural_bm.validation import named_keywords


def epoch_label(epoch: int, epochs: int | None = None) -> str:
    """How messages name an epoch: ``"Epoch 39 (40/40)"``.

    One convention everywhere: an epoch is its 0-based index, as the hooks
    receive it and as ``log.csv``, ``History``, file names
    (``samples_epoch0039.png``, ``ModelCheckpoint``'s ``{epoch}``), plot axes,
    ``results.json`` and config epoch lists give it; the console adds the
    count of epochs done out of ``epochs`` (the total, when known).
    """
    return f"Epoch {epoch}" if epochs is None else f"Epoch {epoch} ({epoch + 1}/{epochs})"


class Callback:
    """Base class for callbacks; override the hooks you need.

    Attributes:
        params: dict set by ``fit``/``evaluate``/``transform``: ``batch_size``,
            ``epochs``, ``steps`` (batches per epoch), ``samples``, ``verbose``,
            ``do_validation``, ``metrics`` (the log keys), ``seed``,
            ``train_data`` (the training monitoring subset: first 10,000 rows)
            and ``validation_data`` (tensor or None), for callbacks that
            measure the model (``AISCallback``).
        model: the Boltzmann machine being trained (``set_model``).

    ``logs`` dicts passed to the hooks carry floats; see ``natural_bm.training.fit``
    for the list of keys. The exception: ``fit`` keeps a batch's ``loss`` on the model's
    device (a 0-dim tensor) so that a GPU step does not wait for the host, and
    ``CallbackList`` turns it into a float only for the callbacks that handle batch ends
    and do not set ``batch_logs_on_device = True`` (each such callback makes every batch
    wait for the device; ``BaseLogger``, ``ProgbarLogger``, ``CyclicLR`` do not).
    Setting ``model.stop_training = True`` in any hook ends ``fit`` after the current batch.

    ``on_batch_begin``/``on_batch_end`` are the old names of
    ``on_train_batch_begin``/``on_train_batch_end``: override either.

    A callback whose behaviour depends on what it saw in earlier epochs
    (counters, best values, chains) returns that in ``state_dict()`` and
    takes it back in ``load_state_dict()``. Checkpoints (``PeriodicSave``
    with ``opt_path``) save it with the training state, and a resumed run
    gives it back right after ``on_train_begin`` (see ``restore_state``), so
    the resumed run is bit-identical to the uninterrupted one.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # a typo in a keyword names the valid ones and the nearest
            cls.__init__ = named_keywords(cls.__dict__["__init__"], cls.__name__)

    #: If True, the batch-end hooks take the logs as ``fit`` makes them (the loss a 0-dim tensor on the
    #: model's device); if False (the default), floats, at the cost of a host round-trip per batch.
    batch_logs_on_device: bool = False

    def __init__(self) -> None:
        self.params: dict = {}
        self.model = None
        self.callback_list = None  # the CallbackList this callback runs in (set by it)
        self._pending_state: dict | None = None

    # state carried across a checkpoint
    def state_dict(self) -> dict:
        """What must survive a checkpoint for a resumed run to behave as an uninterrupted one
        (plain values, lists, dicts and tensors; ``{}`` for a stateless callback)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Take back what ``state_dict`` returned (called after ``on_train_begin``)."""

    def restore_state(self, state: dict | None) -> None:
        """Hand ``state`` to ``load_state_dict`` right after the next ``on_train_begin``
        (which would otherwise reset it)."""
        self._pending_state = state

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self.model = model

    # training
    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    # evaluation (evaluate and the validation pass of fit)
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    # prediction (transform)
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


#: the hooks each batch hook also reaches through ``Callback``'s defaults (Keras's old names)
_ALIASES = {"on_train_batch_begin": ("on_batch_begin",), "on_train_batch_end": ("on_batch_end",)}


def overrides(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` does anything in ``hook``: it overrides the hook, or the old Keras name the
    default forwards to (in its class, or on the instance as ``LambdaCallback`` does)."""
    cls = type(callback)
    return any(name in vars(callback) or getattr(cls, name) is not getattr(Callback, name)
               for name in (hook, *_ALIASES.get(hook, ())))


def reads_batch_ends(callback: Callback) -> bool:
    """Whether ``callback`` overrides a batch-end hook of training, evaluation or prediction (in its
    class, or on the instance as ``LambdaCallback`` does)."""
    return any(overrides(callback, hook) for hook in ("on_train_batch_end", "on_test_batch_end",
                                                       "on_predict_batch_end"))


def host_logs(logs: dict | None) -> dict | None:
    """``logs`` with every tensor value turned into a Python float (the same dict when none is a tensor)."""
    if not logs or not any(isinstance(v, torch.Tensor) for v in logs.values()):
        return logs
    return {k: float(v) if isinstance(v, torch.Tensor) else v for k, v in logs.items()}
