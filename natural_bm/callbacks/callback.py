"""The ``Callback`` base class: every hook of the Keras callback API."""

from __future__ import annotations


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
    for the list of keys. Setting ``model.stop_training = True`` in any hook
    ends ``fit`` after the current batch.

    ``on_batch_begin``/``on_batch_end`` are the old names of
    ``on_train_batch_begin``/``on_train_batch_end``: override either.
    """

    def __init__(self) -> None:
        self.params: dict = {}
        self.model = None

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
