"""Callbacks: hooks into ``fit``, ``evaluate`` and ``transform``.

Core (this issue): :class:`Callback`, :class:`CallbackList`, :class:`BaseLogger`,
:class:`History`, :class:`CSVLogger`, :class:`ProgbarLogger`,
:class:`TerminateOnNaN`, :class:`LambdaCallback`.
Estimation: :class:`AISCallback`. Monitoring and pictures: :class:`SampleCallback`,
:class:`PlotCallback`, :class:`SummaryCallback`, :class:`OptimizerSpy`,
:class:`PeriodicSave`, :class:`LearningRateScheduler`, :class:`MomentumRateScheduler`,
:class:`GibbsStepsScheduler`.

Keras family: :class:`ModelCheckpoint`, :class:`EarlyStopping`,
:class:`ReduceLROnPlateau`, :class:`CyclicLR`, :class:`SnapshotCallbackBuilder`,
:class:`SnapshotModelCheckpoint`, :class:`RemoteMonitor`, :class:`TensorBoard`,
:class:`DeadUnitDetector`. Layer-wise schedules: :func:`gen_schedule`,
:class:`ScheduledLayerwise`, :class:`SimpleLayerwise`, :class:`AdaptiveLayerwise`.

Order inside ``fit``: callbacks that add log keys (``produces_logs``) run
first, then loggers, then callbacks that read the written CSV (``order = 2``).
"""

from natural_bm.callbacks.ais_callback import AISCallback
from natural_bm.callbacks.base_logger import BaseLogger
from natural_bm.callbacks.callback import Callback
from natural_bm.callbacks.callback_list import CallbackList
from natural_bm.callbacks.csv_logger import CSVLogger
from natural_bm.callbacks.cyclic_lr import CyclicLR
from natural_bm.callbacks.dead_unit_detector import DeadUnitDetector
from natural_bm.callbacks.early_stopping import EarlyStopping
from natural_bm.callbacks.history import History
from natural_bm.callbacks.lambda_callback import LambdaCallback
from natural_bm.callbacks.layerwise import AdaptiveLayerwise, ScheduledLayerwise, SimpleLayerwise, gen_schedule
from natural_bm.callbacks.model_checkpoint import ModelCheckpoint
from natural_bm.callbacks.optimizer_spy import OptimizerSpy
from natural_bm.callbacks.periodic_save import PeriodicSave, load_training_state
from natural_bm.callbacks.plot_callback import PlotCallback
from natural_bm.callbacks.progbar_logger import ProgbarLogger
from natural_bm.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from natural_bm.callbacks.remote_monitor import RemoteMonitor
from natural_bm.callbacks.sample_callback import SampleCallback
from natural_bm.callbacks.schedulers import GibbsStepsScheduler, LearningRateScheduler, MomentumRateScheduler
from natural_bm.callbacks.snapshot import SnapshotCallbackBuilder, SnapshotModelCheckpoint
from natural_bm.callbacks.summary_callback import SummaryCallback
from natural_bm.callbacks.tensorboard_callback import TensorBoard
from natural_bm.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "AdaptiveLayerwise",
    "AISCallback",
    "BaseLogger",
    "Callback",
    "CallbackList",
    "CSVLogger",
    "CyclicLR",
    "DeadUnitDetector",
    "EarlyStopping",
    "gen_schedule",
    "GibbsStepsScheduler",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "load_training_state",
    "ModelCheckpoint",
    "MomentumRateScheduler",
    "OptimizerSpy",
    "PeriodicSave",
    "PlotCallback",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "RemoteMonitor",
    "SampleCallback",
    "ScheduledLayerwise",
    "SimpleLayerwise",
    "SnapshotCallbackBuilder",
    "SnapshotModelCheckpoint",
    "SummaryCallback",
    "TensorBoard",
    "TerminateOnNaN",
]
