"""The end of a run whose training ended: model file, the evaluation report (``natural_bm.estimators.report``),
the sample grid, ``summary.txt`` and ``results.json``."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from natural_bm.callbacks.sample_callback import epoch_path
from natural_bm.callbacks.summary_callback import summarize
from natural_bm.estimators import log_likelihood, log_partition_exact
from natural_bm.estimators.report import AISRuns, ForwardAIS, ReverseAIS, evaluate_model
from natural_bm.io import atomic_write_text
from natural_bm.run.build import RunCallbacks, persistent_chains
from natural_bm.run.checkpoints import (
    LOG_NAME,
    MODEL_NAME,
    RESULTS_NAME,
    STATUS_COMPLETE,
    STATUS_DIVERGED,
    STATUS_EARLY,
    SUMMARY_NAME,
    latest_intact_checkpoint,
    write_json,
)
from natural_bm.run.data import data_description
from natural_bm.training.fit import monitor_rows
from natural_bm.viz import history_frame

__all__ = ["finish", "write_summary"]

#: the results written to summary.txt after the log's summary, in this order
SUMMARY_KEYS = ("logZ", "ais_ess", "test_ll", "test_ll_stderr", "logZ_reverse", "test_ll_reverse", "logZ_exact",
                "test_ll_exact", "test_ll_exact_stderr", "test_ll_importance", "test_ll_importance_reverse")


def write_summary(out: Path, cfg: dict, results: dict, summary_cb) -> None:
    """summary.txt: the log's summary (``SummaryCallback``), then how the run ended and its final numbers."""
    text = getattr(summary_cb, "text", None)
    if text is None:
        csv = out / LOG_NAME
        text = summarize(history_frame(csv), cfg)[0] if csv.is_file() else "natural_bm run summary\n"
    lines = ["", f"status: {results['status']}"]
    if results.get("stop_reason"):
        lines.append(f"stopped: {results['stop_reason']}")
    lines.append(f"epochs run: {results['epochs_run']} of {cfg['training']['epochs']}")
    if results["status"] == STATUS_DIVERGED:
        lines.append(f"model.pt not written; last finite checkpoint: epoch {results.get('last_finite_epoch')}")
    lines += [f"{key}: {results[key]:.4f}" for key in SUMMARY_KEYS if isinstance(results.get(key), float)]
    atomic_write_text(out / SUMMARY_NAME, text + "\n".join(lines) + "\n")


def _forward_of(epoch_result: dict) -> ForwardAIS:
    """The epoch AIS's estimate (``AISCallback.results``; checkpoints before natural_bm.run lack the last three)."""
    return ForwardAIS(epoch_result["logZ"], epoch_result["logZ_lo"], epoch_result["logZ_hi"], epoch_result["ais_ess"],
                      epoch_result.get("runs"), epoch_result.get("betas"), epoch_result.get("annealed_layers"))


def finish(cfg: dict, out: Path, model, splits: tuple, final_epoch: int, callbacks: RunCallbacks, labels=None) -> dict:
    """Write what a run whose training ended leaves, and return its results.

    Args:
        splits: (train, valid, test) rows, as ``load_data`` gives them.
        final_epoch: the last epoch trained (0-based).
        callbacks: the run's callbacks (the epoch AIS's estimate of ``final_epoch`` is reused).
        labels: (train, valid, test) labels, for the test accuracy.
    """
    trainer = model.trainer
    if trainer.diverged:
        results = {"status": STATUS_DIVERGED, "stop_reason": trainer.stop_reason, "epochs_run": final_epoch + 1,
                   "last_finite_epoch": latest_intact_checkpoint(out)[0]}
        write_json(out / RESULTS_NAME, results)
        write_summary(out, cfg, results, callbacks.summary)
        return results
    model.save(out / MODEL_NAME)
    results: dict = {"status": STATUS_EARLY if trainer.stop_reason else STATUS_COMPLETE, "epochs_run": final_epoch + 1}
    if trainer.stop_reason:
        results["stop_reason"] = trainer.stop_reason
    if callbacks.plan.ais:
        results.update(_evaluate(cfg, model, splits, final_epoch, callbacks.ais).to_dict())
    else:
        results.update(_exact_only(model, splits[2]))
    results["logZ_method"] = callbacks.plan.method
    results["final_epoch"] = final_epoch
    test = splits[2]
    if test is not None and labels is not None:  # the label layer's most probable class under p(y | v)
        results["test_accuracy"] = float((model.predict(test).cpu().numpy() == labels[2]).mean())
    results["data"] = data_description(cfg)
    if not epoch_path(callbacks.sampler.savename, final_epoch).is_file():
        callbacks.sampler.set_model(model)
        callbacks.sampler.sample(final_epoch)
    write_summary(out, cfg, results, callbacks.summary)
    write_json(out / RESULTS_NAME, results)
    return results


def _evaluate(cfg: dict, model, splits: tuple, final_epoch: int, ais_cb):
    """The report of the finished model: the epoch AIS (run now if training ended before it was planned),
    the test log-likelihoods, and reverse AIS and importance sampling as ``cfg["ais"]`` asks."""
    x, valid, test = splits
    a, seed = cfg["ais"], cfg["seed"]

    def as_tensor(d):
        return None if d is None else torch.as_tensor(d, dtype=model.dtype, device=model.device)

    # the rows fit monitored: the AIS base model of the forward and the reverse runs
    base_data = monitor_rows(as_tensor(x), seed, cfg["data"]["kind"] == "stochastic")
    epoch_result = ais_cb.results.get(final_epoch)
    if epoch_result is None:  # the run ended before the epoch AIS was planned for (early stopping)
        ais_cb.set_model(model)
        ais_cb.params = {"train_data": base_data, "validation_data": as_tensor(valid), "verbose": 0}
        epoch_result = ais_cb.evaluate(final_epoch)
    exact = epoch_result.get("logZ_exact")
    reverse = ReverseAIS(persistent_chains(model), a["reverse_gibbs"], x) if a["reverse"] else None
    return evaluate_model(model, data={"test": test}, base_data=base_data,
                          ais=AISRuns(a["n_runs"], a["n_betas"], a["parity"], seed + final_epoch),
                          forward=_forward_of(epoch_result), log_z_exact=exact if _finite(exact) else None,
                          reverse=reverse, importance_samples=a["importance_samples"], seed=seed)


def _exact_only(model, test) -> dict:
    """The results of a run whose log Z is enumerated instead of estimated by AIS (``ais.exact: auto``):
    ``logZ_exact``, and the test rows' ``test_ll_exact`` with its standard error over rows (nats)."""
    log_z = log_partition_exact(model, progress=False)
    out = {"logZ_exact": log_z}
    if test is not None:
        out["test_ll_exact"], out["test_ll_exact_stderr"] = log_likelihood(model, test, log_z)
    return out


def _finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)
