"""``LambdaCallback``: a callback built from plain functions."""

from __future__ import annotations

from natural_bm.callbacks.callback import Callback


class LambdaCallback(Callback):
    """Build a callback on the fly from functions, one per hook.

    Each keyword names a hook (``on_epoch_end=lambda epoch, logs: ...``);
    ``on_batch_begin``/``on_batch_end`` are the training-batch hooks. Any hook
    of :class:`Callback` may be given.
    """

    def __init__(self, **hooks) -> None:
        super().__init__()
        for name, fn in hooks.items():
            if not (name.startswith("on_") and hasattr(Callback, name)):
                raise ValueError(f"LambdaCallback got unknown hook {name!r}.")
            if fn is not None:
                setattr(self, name, fn)
