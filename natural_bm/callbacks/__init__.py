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

import importlib

# Loaded on first use (PEP 562): the hook machinery that the fit loop drives (Callback, CallbackList,
# History, BaseLogger, ProgbarLogger) imports without the callbacks that need the estimators.
_LAZY = {
    "AISCallback": "natural_bm.callbacks.ais_callback",
    "BaseLogger": "natural_bm.callbacks.base_logger",
    "Callback": "natural_bm.callbacks.callback",
    "CallbackList": "natural_bm.callbacks.callback_list",
    "CSVLogger": "natural_bm.callbacks.csv_logger",
    "CyclicLR": "natural_bm.callbacks.cyclic_lr",
    "DeadUnitDetector": "natural_bm.callbacks.dead_unit_detector",
    "EarlyStopping": "natural_bm.callbacks.early_stopping",
    "ExactLikelihoodCallback": "natural_bm.callbacks.exact_likelihood",
    "History": "natural_bm.callbacks.history",
    "LambdaCallback": "natural_bm.callbacks.lambda_callback",
    "AdaptiveLayerwise": "natural_bm.callbacks.layerwise",
    "ScheduledLayerwise": "natural_bm.callbacks.layerwise",
    "SimpleLayerwise": "natural_bm.callbacks.layerwise",
    "gen_schedule": "natural_bm.callbacks.layerwise",
    "ModelCheckpoint": "natural_bm.callbacks.model_checkpoint",
    "OptimizerSpy": "natural_bm.callbacks.optimizer_spy",
    "PeriodicSave": "natural_bm.callbacks.periodic_save",
    "load_training_state": "natural_bm.callbacks.periodic_save",
    "PlotCallback": "natural_bm.callbacks.plot_callback",
    "ProgbarLogger": "natural_bm.callbacks.progbar_logger",
    "ReduceLROnPlateau": "natural_bm.callbacks.reduce_lr_on_plateau",
    "RemoteMonitor": "natural_bm.callbacks.remote_monitor",
    "SampleCallback": "natural_bm.callbacks.sample_callback",
    "GibbsStepsScheduler": "natural_bm.callbacks.schedulers",
    "LearningRateScheduler": "natural_bm.callbacks.schedulers",
    "MomentumRateScheduler": "natural_bm.callbacks.schedulers",
    "SnapshotCallbackBuilder": "natural_bm.callbacks.snapshot",
    "SnapshotModelCheckpoint": "natural_bm.callbacks.snapshot",
    "SummaryCallback": "natural_bm.callbacks.summary_callback",
    "TensorBoard": "natural_bm.callbacks.tensorboard_callback",
    "TerminateOnNaN": "natural_bm.callbacks.terminate_on_nan",
    "TrajectoryAISCallback": "natural_bm.callbacks.trajectory_ais",
}


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
    "ExactLikelihoodCallback",
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
    "TrajectoryAISCallback",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'natural_bm.callbacks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
