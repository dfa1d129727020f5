"""Looking at a model: image grids (samples, filters), training curves, parameter statistics."""

from natural_bm.viz.history import history_frame, plot_history
from natural_bm.viz.images import image_grid, plot_filters, read_tiles, save_png
from natural_bm.viz.parameters import format_parameter_stats, parameter_stats

__all__ = ["format_parameter_stats", "history_frame", "image_grid", "parameter_stats", "plot_filters", "plot_history",
           "read_tiles", "save_png"]
