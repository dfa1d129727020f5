"""Looking at a model: image grids (samples, filters), training curves, parameter statistics.

Names load on first use (PEP 562): image grids need no matplotlib, so ``model.sample_grid`` and the
sample callbacks import it only where a training curve is drawn (``plot_history``, ``history_frame``).
"""

import importlib

_LAZY = {
    "format_parameter_stats": "natural_bm.viz.parameters",
    "history_frame": "natural_bm.viz.history",
    "image_grid": "natural_bm.viz.images",
    "parameter_stats": "natural_bm.viz.parameters",
    "plot_filters": "natural_bm.viz.images",
    "plot_history": "natural_bm.viz.history",
    "read_tiles": "natural_bm.viz.images",
    "save_png": "natural_bm.viz.images",
}

__all__ = ["format_parameter_stats", "history_frame", "image_grid", "parameter_stats", "plot_filters", "plot_history",
           "read_tiles", "save_png"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'natural_bm.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
