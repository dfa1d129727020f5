"""Image grids: tiles of arrays written as 8-bit grey PNGs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from natural_bm.io import atomic_path


def _as_numpy(arrays) -> np.ndarray:
    if isinstance(arrays, torch.Tensor):
        arrays = arrays.detach().cpu().numpy()
    return np.asarray(arrays, dtype=np.float64)


#: with ``scale="auto"`` tiles are enlarged (whole pixels) to at least this many pixels a side
MIN_TILE_PIXELS = 16


def tile_scale(image_shape: tuple[int, int], scale: int | str = "auto") -> int:
    """The whole-pixel enlargement of a grid's tiles: ``scale`` itself (an integer >= 1), or with ``"auto"``
    enough to make the smaller side of a tile at least ``MIN_TILE_PIXELS`` (1 for MNIST's 28 x 28; 6 for
    bars and stripes' 3 x 3)."""
    if scale == "auto":
        return max(1, math.ceil(MIN_TILE_PIXELS / min(image_shape)))
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"`scale` must be an integer >= 1 or 'auto', got {scale!r}.")
    return scale


def image_grid(
    arrays,
    shape: tuple[int, int],
    n_cols: int | None = None,
    padding: int = 1,
    pad_value: float = 1.0,
    scale: int = 1,
    normalize: bool = False,
    path: str | os.PathLike | None = None,
) -> np.ndarray:
    """Tile ``arrays`` into one grey image; optionally save it as a PNG.

    Args:
        arrays: (n, height*width) values in [0, 1] (or any range with ``normalize``).
        shape: (height, width) of one tile, e.g. (28, 28) for MNIST.
        n_cols: tiles per row (default: ceil(sqrt(n))). Tile i sits at row
            i // n_cols, column i % n_cols.
        padding: pixels between tiles (and around the grid), filled with ``pad_value``.
        scale: integer upscaling of every pixel (nearest neighbour).
        normalize: rescale each tile to [0, 1] by its own min and max (for filters).
        path: write the grid there, atomically: an 8-bit PNG for ``.png``, a JPEG
            (quality 95) for ``.jpg``/``.jpeg``; any other suffix is a ValueError.

    Returns:
        The grid as uint8 (rows, cols): pixel = round(255 * value).
    """
    if path is not None:
        image_format(path)  # refuse an unsupported suffix before the work
    x = _as_numpy(arrays)
    if x.ndim == 1:
        x = x[None]
    h, w = shape
    if x.ndim != 2 or x.shape[1] != h * w:
        raise ValueError(f"`arrays` must be (n, {h}*{w}) for tiles of shape {shape}, got {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("`arrays` contains NaN or inf.")
    if normalize:
        lo, hi = x.min(1, keepdims=True), x.max(1, keepdims=True)
        x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    elif x.min() < 0 or x.max() > 1:
        raise ValueError("`arrays` must lie in [0, 1]; pass normalize=True to rescale each tile.")
    n = x.shape[0]
    n_cols = n_cols or math.ceil(math.sqrt(n))
    n_rows = math.ceil(n / n_cols)
    grid = np.full((n_rows * (h + padding) + padding, n_cols * (w + padding) + padding), pad_value)
    for i in range(n):
        r, c = divmod(i, n_cols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = x[i].reshape(h, w)
    img = np.rint(grid * 255).astype(np.uint8)
    if scale > 1:
        img = img.repeat(scale, 0).repeat(scale, 1)
    if path is not None:
        save_png(img, path)
    return img


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def image_format(path: str | os.PathLike) -> str:
    """The PIL format a path's suffix asks for ('PNG' or 'JPEG'); ValueError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"cannot write an image to {path}: use a .png, .jpg or .jpeg file name.")
    return IMAGE_FORMATS[suffix]


def save_png(img: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (rows, cols) or (rows, cols, 3|4) array atomically, in the format its suffix
    names (PNG, or JPEG at quality 95 for .jpg/.jpeg; see ``image_format``)."""
    fmt = image_format(path)
    with atomic_path(path) as tmp:
        image = Image.fromarray(img)
        if fmt == "JPEG":
            image.convert("RGB" if image.mode in ("RGBA", "P") else image.mode).save(tmp, format="JPEG", quality=95)
        else:
            image.save(tmp, format="PNG")
    return Path(path)


def read_tiles(path: str | os.PathLike, shape: tuple[int, int], n: int, n_cols: int, padding: int = 1,
               scale: int = 1) -> np.ndarray:
    """Decode a grid written by ``image_grid`` back into (n, h*w) values in [0, 1]."""
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64)[::scale, ::scale] / 255.0
    h, w = shape
    out = np.empty((n, h * w))
    for i in range(n):
        r, c = divmod(i, n_cols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        out[i] = img[top : top + h, left : left + w].reshape(-1)
    return out


def plot_filters(model, shape: tuple[int, int], path: str | os.PathLike | None = None, n_filters: int | None = None,
                 n_cols: int | None = None, scale: int = 2) -> np.ndarray:
    """Receptive fields of hidden units (columns of ``W``), each rescaled to [0, 1], as one grid."""
    W = model.filters().detach().cpu().double().numpy().T  # (n_features, n_visible)
    if n_filters is not None:
        W = W[:n_filters]
    return image_grid(W, shape, n_cols=n_cols, normalize=True, scale=scale, path=path)
