"""Batched passes over data that fire the callbacks' test and predict hooks: ``evaluate`` (also the
validation pass of ``fit``) and ``transform``."""

from __future__ import annotations

import math

import torch

from natural_bm.callbacks.callback_list import CallbackList
from natural_bm.rng import RandomSource
from natural_bm.validation import as_data_tensor, check_positive_int

__all__ = ["evaluate", "evaluate_batches", "transform"]


def evaluate_batches(model, x: torch.Tensor, batch_size: int, cb: CallbackList, generator) -> dict[str, float]:
    """Mean metrics over the validated ``x`` (n, n_input), in batches, firing the test hooks of ``cb``.

    Returns ``{"loss": reconstruction cross-entropy, "pll": pseudo-log-likelihood (NaN for real-valued
    visible units), "free_energy": mean monitoring free energy}``, nats per row.
    """
    n = x.shape[0]
    totals = {"loss": 0.0, "pll": 0.0, "free_energy": 0.0}
    cb.on_test_begin({})
    with torch.no_grad():
        for b, lo in enumerate(range(0, n, batch_size)):
            v = x[lo : lo + batch_size]
            logs = {"batch": b, "size": v.shape[0]}
            cb.on_test_batch_begin(b, logs)
            batch = {
                "loss": model.reconstruction_loss(v, generator).sum().item(),
                "pll": model.pseudo_log_likelihood(v, generator).sum().item() if model.binary_visible else math.nan,
                "free_energy": model.monitor_free_energy(v).sum().item(),
            }
            for k in totals:
                totals[k] += batch[k]
            logs.update({k: val / v.shape[0] for k, val in batch.items()})
            cb.on_test_batch_end(b, logs)
    result = {k: v / n for k, v in totals.items()}
    cb.on_test_end(dict(result))
    return result


def _hooks(model, callbacks, batch_size: int, rows: int) -> CallbackList:
    cb = CallbackList(callbacks)
    cb.set_model(model)
    cb.set_params({"batch_size": batch_size, "samples": rows, "verbose": 0,
                   "steps": (rows + batch_size - 1) // batch_size})
    return cb


def evaluate(model, x, batch_size: int = 100, callbacks=None, seed: int | None = None) -> dict[str, float]:
    """Mean metrics of ``x`` (n, n_input) in nats per image, firing the test hooks of ``callbacks``.

    Returns ``{"loss": reconstruction cross-entropy, "pll": pseudo-log-likelihood, "free_energy": mean
    free energy}``.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    x = as_data_tensor(x, "x", model.n_input, device=model.device, dtype=model.dtype, value_range=model.data_range)
    cb = _hooks(model, callbacks, batch_size, x.shape[0])
    return evaluate_batches(model, x, batch_size, cb, RandomSource(seed, model.device))


def transform(model, x, batch_size: int = 1000, callbacks=None):
    """Hidden features p(h = 1 | v) of ``x`` (n, n_input), firing the predict hooks of ``callbacks``.

    Returns a tensor if ``x`` is one, else a numpy array: (n, n_features).
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    as_numpy = not isinstance(x, torch.Tensor)
    x = as_data_tensor(x, "x", model.n_input, device=model.device, dtype=model.dtype, value_range=model.data_range)
    cb = _hooks(model, callbacks, batch_size, x.shape[0])
    out = []
    cb.on_predict_begin({})
    with torch.no_grad():
        for b, lo in enumerate(range(0, x.shape[0], batch_size)):
            logs = {"batch": b, "size": min(batch_size, x.shape[0] - lo)}
            cb.on_predict_batch_begin(b, logs)
            out.append(model.features(x[lo : lo + batch_size]))
            cb.on_predict_batch_end(b, logs)
    cb.on_predict_end({})
    result = torch.cat(out)
    return result.cpu().numpy() if as_numpy else result
