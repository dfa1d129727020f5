"""Pictures: image grids (samples, filters) and training curves."""

from natural_bm.viz.history import history_frame, plot_history
from natural_bm.viz.images import image_grid, plot_filters, read_tiles, save_png

__all__ = ["history_frame", "image_grid", "plot_filters", "plot_history", "read_tiles", "save_png"]
