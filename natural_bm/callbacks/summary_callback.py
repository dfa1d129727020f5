"""``SummaryCallback``: a plain-text summary of a run, written at the end of training."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from natural_bm.callbacks.callback import Callback
from natural_bm.callbacks.monitor import NO_BEST, infer_mode
from natural_bm.estimators.ais import MIN_EFFECTIVE_SAMPLE_SIZE
from natural_bm.io import atomic_write_text
from natural_bm.viz import history_frame


def summarize(df, config: dict | None = None, wall_seconds: float | None = None) -> tuple[str, dict]:
    """Summary text and values from a log DataFrame indexed by epoch.

    Values: ``{key: {"final": v, "final_epoch": e, "best": b, "best_epoch": e_b}}``
    (best is the max for log-likelihood keys, the min otherwise; none for
    log Z and other keys without a direction).
    """
    lines = ["natural_bm run summary", "======================", ""]
    if config:
        lines += ["configuration:"] + [f"  {k}: {json.dumps(v, default=str)}" for k, v in config.items()] + [""]
    lines.append(f"epochs: {len(df)} (last epoch index {df.index[-1] if len(df) else 'none'})")
    if wall_seconds is not None:
        lines.append(f"wall time: {wall_seconds:.1f} s")
    lines += ["", f"{'metric':<18} {'final':>14} {'epoch':>6} {'best':>14} {'epoch':>6}"]
    values: dict = {}
    for key in df.columns:
        col = df[key]
        if not np.issubdtype(col.dtype, np.number) or not col.notna().any():
            continue
        s = col.dropna()
        entry = {"final": float(s.iloc[-1]), "final_epoch": int(s.index[-1])}
        best = ""
        if key not in NO_BEST:
            idx = s.idxmax() if infer_mode(key) == "max" else s.idxmin()
            entry.update(best=float(s[idx]), best_epoch=int(idx))
            best = f"{entry['best']:>14.4f} {entry['best_epoch']:>6d}"
        values[key] = entry
        lines.append(f"{key:<18} {entry['final']:>14.4f} {entry['final_epoch']:>6d} {best}")
    if "logZ" in values:
        z = values["logZ"]["final"]
        e = values["logZ"]["final_epoch"]
        lo, hi = df.loc[e].get("logZ_lo", math.nan), df.loc[e].get("logZ_hi", math.nan)
        lines += ["", f"final log Z (epoch {e}): {z:.4f} nats, 3-sigma band [{lo:.4f}, {hi:.4f}]"]
        ess = df.loc[e].get("ais_ess", math.nan)
        if not math.isnan(ess):
            lines[-1] += f", {ess:.1f} effective AIS runs" + (" (too few: the band is not trustworthy)"
                                                              if ess < MIN_EFFECTIVE_SAMPLE_SIZE else "")
        for key in ("train_ll", "val_ll"):
            ll = df.loc[e].get(key, math.nan)
            if not math.isnan(ll):
                # a higher log Z lowers the log-likelihood: the band flips
                lines.append(f"final {key}: {ll:.4f} nats [{ll - (hi - z):.4f}, {ll + (z - lo):.4f}]")
        if "logZ_exact" in df.columns and not math.isnan(df.loc[e].get("logZ_exact", math.nan)):
            lines.append(f"exact log Z (epoch {e}): {df.loc[e]['logZ_exact']:.4f} nats")
    return "\n".join(lines) + "\n", values


class SummaryCallback(Callback):
    """At the end of training writes ``<save_folder>/summary.txt`` from ``csv_filepath``:
    run configuration (fit parameters, model config, optimiser, algorithm),
    epochs, wall time, final and best value of each metric with its epoch, and
    the final log Z and log-likelihoods with their error bars."""

    order = 2

    def __init__(self, save_folder, csv_filepath, filename: str = "summary.txt") -> None:
        super().__init__()
        self.save_folder = Path(save_folder)
        self.csv_filepath = Path(csv_filepath)
        self.filename = filename

    def on_train_begin(self, logs=None):
        self._t0 = time.perf_counter()

    def config(self) -> dict:
        cfg = {k: v for k, v in self.params.items() if isinstance(v, (int, float, str, bool, list)) or v is None}
        m = self.model
        if m is not None:
            cfg["model"] = {"class": type(m).__name__, **m.get_config()}
            trainer = m.trainer
            if trainer is not None:
                cfg["optimizer"] = {"class": type(trainer.optimizer).__name__, **trainer.optimizer.hyperparameters()}
                cfg["algorithm"] = trainer.algorithm.get_config()
                cfg["l1"], cfg["l2"] = trainer.l1, trainer.l2
        return cfg

    def on_train_end(self, logs=None):
        if not self.csv_filepath.is_file():
            return
        df = history_frame(self.csv_filepath)
        wall = time.perf_counter() - self._t0 if hasattr(self, "_t0") else None
        self.text, self.values = summarize(df, self.config(), wall)
        atomic_write_text(self.save_folder / self.filename, self.text)
