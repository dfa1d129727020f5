"""Callbacks: hooks into ``fit``, ``evaluate`` and ``transform``.

Core (this issue): :class:`Callback`, :class:`CallbackList`, :class:`BaseLogger`,
:class:`History`, :class:`CSVLogger`, :class:`ProgbarLogger`,
:class:`TerminateOnNaN`, :class:`LambdaCallback`.
"""

from natural_bm.callbacks.base_logger import BaseLogger
from natural_bm.callbacks.callback import Callback
from natural_bm.callbacks.callback_list import CallbackList
from natural_bm.callbacks.csv_logger import CSVLogger
from natural_bm.callbacks.history import History
from natural_bm.callbacks.lambda_callback import LambdaCallback
from natural_bm.callbacks.progbar_logger import ProgbarLogger
from natural_bm.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "BaseLogger",
    "Callback",
    "CallbackList",
    "CSVLogger",
    "History",
    "LambdaCallback",
    "ProgbarLogger",
    "TerminateOnNaN",
]
