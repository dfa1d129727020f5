"""Training curves from a ``CSVLogger`` file or a ``History``."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from natural_bm.io import atomic_path

LOGZ_KEYS = ("logZ", "logZ_lo", "logZ_hi", "logZ_exact")

#: y-axis labels (with units) of the panels; other panels are labelled with their key
UNITS = {
    "log Z": "log Z (nats)",
    "log-likelihood": "log-likelihood (nats per image)",
    "loss": "cross-entropy (nats per image)",
    "pll": "pseudo-log-likelihood (nats per image)",
    "free_energy_gap": "free energy gap (nats)",
    "ais_ess": "effective AIS runs",
    "lr": "learning rate",
    "momentum": "momentum",
    "k": "Gibbs steps per update",
}


def y_label(panel: str) -> str:
    """The y-axis label of a panel: its quantity and unit (``UNITS``), else its key."""
    return UNITS.get(panel, panel)


def history_frame(source) -> pd.DataFrame:
    """A DataFrame indexed by epoch from a CSV path, a ``History`` or a dict of lists."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"log file not found: {path}")
        df = pd.read_csv(path)
        return df.set_index("epoch") if "epoch" in df.columns else df
    if hasattr(source, "history"):
        return pd.DataFrame(source.history, index=pd.Index(source.epoch, name="epoch"))
    if isinstance(source, pd.DataFrame):
        return source
    return pd.DataFrame(source)


def panels(df: pd.DataFrame) -> dict[str, list[str]]:
    """Which columns go on which panel: each metric with its ``val_`` twin, log Z, log-likelihoods.

    Columns that are entirely NaN are left out.
    """
    cols = [c for c in df.columns if df[c].notna().any() and np.issubdtype(df[c].dtype, np.number)]
    out: dict[str, list[str]] = {}
    z = [c for c in LOGZ_KEYS if c in cols]
    if z:
        out["log Z"] = z
    ll = [c for c in cols if c.endswith("_ll") or c.endswith("_ll_exact")]
    if ll:
        out["log-likelihood"] = ll
    for c in cols:
        if c in z or c in ll or c.startswith("val_"):
            continue
        out[c] = [c] + ([f"val_{c}"] if f"val_{c}" in cols else [])
    for c in cols:  # validation metrics without a training twin
        if c.startswith("val_") and c not in ll and c[4:] not in out:
            out[c] = [c]
    return out


def _plot_logz_band(ax, x, z, lo, hi) -> None:
    """Error bars from ``lo`` to ``hi`` around ``z``; where ``lo`` is -inf (the -3 sigma end
    reaches zero weight) the bar goes up to ``hi`` only and a dotted arrow points down."""
    bounded = np.isfinite(lo)
    if bounded.any():
        ax.errorbar(x[bounded], z[bounded], yerr=[z[bounded] - lo[bounded], hi[bounded] - z[bounded]], fmt="none",
                    capsize=4, color="C0", label="±3σ")
    if (~bounded).any():
        xs, zs, hs = x[~bounded], z[~bounded], hi[~bounded]
        ax.errorbar(xs, zs, yerr=[np.zeros_like(zs), hs - zs], fmt="none", capsize=4, color="C3",
                    label="+3σ; -3σ unbounded (few effective AIS runs)")
        tips = zs - 2 * (hs - zs) - 1.0  # an arrow of arbitrary length: the end is unbounded
        ax.vlines(xs, tips, zs, linestyles=":", color="C3")
        ax.plot(xs, tips, "v", color="C3")


def _fixed_margins(fig, n_rows: int, n_cols: int, title_space: float = 0.0) -> None:
    """Room for each panel's title, axis labels and tick labels, in inches, without ``tight_layout``
    (which draws the whole figure once more to measure it: about half the time of a drawing)."""
    left, right, bottom, top, between_cols, between_rows = 0.85, 0.2, 0.6, 0.4 + title_space, 1.05, 0.95
    width, height = fig.get_size_inches()
    ax_w = (width - left - right - (n_cols - 1) * between_cols) / n_cols
    ax_h = (height - bottom - top - (n_rows - 1) * between_rows) / n_rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=between_cols / ax_w, hspace=between_rows / ax_h)


def plot_history(source, path: str | os.PathLike | None = None, title: str | None = None):
    """Plot every metric (training and validation on shared axes), log Z with its
    +-3 sigma band and exact value, and log-likelihoods. NaN cells and missing
    columns are skipped. Saves a PNG atomically when ``path`` is given; returns
    the matplotlib figure and the panel layout."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    df = history_frame(source)
    layout = panels(df)
    n = max(1, len(layout))
    n_cols = min(3, n)
    n_rows = math.ceil(n / n_cols)
    title_space = 0.35 if title else 0.0  # inches above the panels for the suptitle
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.2 * n_rows + title_space), squeeze=False)
    x = df.index.to_numpy()
    for ax, (name, cols) in zip(axes.flat, layout.items(), strict=False):
        if name == "log Z":
            if "logZ" in cols:
                s = df["logZ"].notna()
                ax.plot(x[s], df["logZ"][s], "o-", label="AIS log Z")
                if "logZ_lo" in cols and "logZ_hi" in cols:
                    _plot_logz_band(ax, x[s], df["logZ"][s].to_numpy(), df["logZ_lo"][s].to_numpy(),
                                    df["logZ_hi"][s].to_numpy())
            if "logZ_exact" in cols:
                s = df["logZ_exact"].notna()
                ax.plot(x[s], df["logZ_exact"][s], "k--", marker="x", markersize=9, label="exact")
        else:
            for c in cols:
                s = df[c].notna()
                ax.plot(x[s], df[c][s], "o-" if s.sum() < 30 else "-", label=c)
        ax.set_title(name)
        ax.set_xlabel("epoch (as in log.csv: 0 is the first)")
        ax.set_ylabel(y_label(name))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(x):  # every panel spans the same epochs, also one that has a value at one epoch only
            ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(layout):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    _fixed_margins(fig, n_rows, n_cols, title_space)
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    return fig, layout
