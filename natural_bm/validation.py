"""Checks on user input, with errors that name the argument and the fix."""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

ArrayLike = "np.ndarray | torch.Tensor"


def as_data_tensor(
    x,
    name: str,
    n_features: int | None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    value_range: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """Validate a data matrix and return it as a 2-D tensor on ``device``.

    Args:
        x: array-like of shape (n_samples, n_features) with values in [0, 1]
            (binary or grey-level probabilities): a numpy array, a torch
            tensor, a list of rows, a pandas DataFrame, or a scipy sparse
            matrix (densified when it has at most ``MAX_DENSE_ELEMENTS`` entries).
        name: the argument's name, used in error messages.
        n_features: expected number of columns (None to skip the check).
        device, dtype: where and how the returned tensor lives.
        value_range: the values the data may take, (0, 1) for Bernoulli units (the
            default) or None for real-valued units (any finite value), e.g. ``model.data_range``.

    Raises:
        TypeError: ``x`` is not an array or tensor of numbers, or is a sparse or
            meta-device tensor.
        ValueError: wrong number of dimensions or columns, empty, NaN/inf, or
            values outside [0, 1].
    """
    x = _dense_numeric(x, name)
    if isinstance(x, torch.Tensor):
        if x.layout != torch.strided:
            raise TypeError(f"`{name}` is a sparse tensor ({x.layout}); pass a dense one, e.g. {name}.to_dense().")
        if x.device.type == "meta":
            raise TypeError(f"`{name}` is on the meta device, which holds shapes but no values; pass a tensor "
                            "with data (on 'cpu' or 'cuda').")
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype == object or not (
            np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)
        ):
            raise TypeError(
                f"`{name}` must hold numbers, got a numpy array of dtype {x.dtype}; "
                "convert it with np.asarray(x, dtype=np.float32)."
            )
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise TypeError(
            f"`{name}` must be a numpy array or a torch tensor of shape "
            f"(n_samples, n_features), got {type(x).__name__}."
        )
    if t.is_complex():
        raise TypeError(f"`{name}` must be real-valued, got dtype {t.dtype}.")
    if t.dim() != 2:
        raise ValueError(
            f"`{name}` must be 2-D (n_samples, n_features), got shape {tuple(t.shape)}; "
            "flatten images first, e.g. x.reshape(len(x), -1)."
        )
    if t.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (0 rows); pass at least one sample.")
    if n_features is not None and t.shape[1] != n_features:
        raise ValueError(
            f"`{name}` has {t.shape[1]} columns but the model has {n_features} "
            "visible units; pass data with one column per visible unit."
        )
    t = t.to(device=device, dtype=dtype)
    lo, hi = (float(a) for a in torch.aminmax(t))  # one pass; NaN propagates
    if lo != lo or hi != hi:
        raise ValueError(f"`{name}` contains NaN; clean or drop those rows.")
    if lo == float("-inf") or hi == float("inf"):
        raise ValueError(f"`{name}` contains inf; clean or drop those rows.")
    if value_range is not None and (lo < value_range[0] or hi > value_range[1]):
        raise ValueError(
            f"`{name}` must lie in [0, 1] (binary or probabilities), got values in "
            f"[{lo:g}, {hi:g}]; rescale it, e.g. x / 255 for 8-bit images, or give the model real-valued "
            f"(Gaussian) visible units."
        )
    return t


#: a scipy sparse matrix with more entries than this is refused rather than densified (4 GB of float32)
MAX_DENSE_ELEMENTS = 2**30


def _dense_numeric(x, name: str):
    """Lists, DataFrames and scipy sparse matrices as numpy arrays; arrays and tensors unchanged."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x
    if hasattr(x, "tocsr") and hasattr(x, "nnz"):  # a scipy sparse matrix or array
        n = int(np.prod(x.shape))
        if n > MAX_DENSE_ELEMENTS:
            raise TypeError(f"`{name}` is a sparse matrix of shape {x.shape} ({n:,} entries), too large to densify "
                            f"(limit {MAX_DENSE_ELEMENTS:,}); pass it in dense chunks.")
        return np.asarray(x.toarray())
    if type(x).__module__.startswith("pandas"):
        try:
            return x.to_numpy(dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise TypeError(f"`{name}` is a DataFrame with non-numeric columns ({err}); select the numeric "
                            "columns first.") from None
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be a list of equal-length rows of numbers.") from None
    return x


def as_label_tensor(y, name: str, n_rows: int, n_classes: int, device=None, dtype: torch.dtype = torch.float32
                    ) -> torch.Tensor:
    """Class labels as one-hot rows (n_rows, n_classes) on ``device``: ``y`` is integer labels (n_rows,)
    in [0, n_classes) or one-hot rows (n_rows, n_classes) (a numpy array, tensor, list or pandas object)."""
    try:
        arr = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be class labels (an array of integers), got {type(y).__name__}.") from err
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape[:1] != (n_rows,):
        raise ValueError(f"`{name}` has {arr.shape[0] if arr.ndim else 'no'} rows but the data has {n_rows}; "
                         f"give one label per row.")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be numeric class labels, got dtype {arr.dtype}.")
    if arr.ndim == 2:
        if arr.shape[1] != n_classes:
            raise ValueError(f"`{name}` one-hot rows have {arr.shape[1]} columns; the label layer has {n_classes}.")
        if not np.isfinite(arr).all() or not ((arr == 0) | (arr == 1)).all() or not (arr.sum(1) == 1).all():
            raise ValueError(f"`{name}` one-hot rows must hold a single 1 and zeros elsewhere.")
        return torch.as_tensor(arr, dtype=dtype, device=device)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D integer labels or 2-D one-hot rows, got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
        raise ValueError(f"`{name}` must hold whole numbers (class indices), got non-integers or NaN.")
    labels = arr.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"`{name}` must be class indices in [0, {n_classes}), got values from {labels.min()} "
                         f"to {labels.max()}.")
    return torch.nn.functional.one_hot(torch.as_tensor(labels, device=device), n_classes).to(dtype)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an integer >= ``minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_beta(beta, name: str = "beta"):
    """Inverse temperature: a float or tensor >= 0."""
    if beta.__class__ is float and 0.0 <= beta < math.inf:  # the common case, checked without a numpy call
        return beta
    if isinstance(beta, torch.Tensor):
        return beta
    if not isinstance(beta, numbers.Real) or not np.isfinite(beta) or beta < 0:
        raise ValueError(f"`{name}` (inverse temperature) must be a finite number >= 0, got {beta!r}.")
    return float(beta)


def check_keywords(given: Iterable[str], valid: Sequence[str], where: str) -> None:
    """TypeError when a name of ``given`` is not in ``valid``, naming it, the nearest valid name (a typo's
    likely fix) and every valid one: ``where`` says what was called (``"EarlyStopping()"``)."""
    unknown = [k for k in given if k not in valid]
    if not unknown:
        return
    hints = []
    for k in unknown:
        near = difflib.get_close_matches(k, list(valid), n=1)
        hints.append(f"{k!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    raise TypeError(f"{where} got unexpected keyword argument{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                    f"it takes {', '.join(valid) if valid else 'none'}.")


def keyword_names(func: Callable) -> list[str]:
    """The names ``func`` takes by keyword (none of ``self``, ``*args``, ``**kwargs``)."""
    return [p.name for p in inspect.signature(func).parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def named_keywords(init: Callable, owner: str) -> Callable:
    """``init`` (an ``__init__`` without ``**kwargs``) wrapped so that an unknown keyword raises
    ``check_keywords``'s TypeError (the valid names and the nearest) instead of Python's bare one."""
    valid = keyword_names(init)
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
        return init

    @functools.wraps(init)
    def checked(self, *args, **kwargs):
        if kwargs:
            check_keywords(kwargs, valid, f"{owner}()")
        return init(self, *args, **kwargs)

    return checked


#: the folder of the natural_bm package: frames in it are the library's, not the user's
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def warn_user(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """``warnings.warn`` attributed to the user's line: the first frame on the stack outside natural_bm (a
    script's or a notebook cell's line), so the printed warning shows that line, not the library's source."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
