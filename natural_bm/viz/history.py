"""Training curves from a ``CSVLogger`` file or a ``History``.

``plot_history`` draws one panel per metric (with its validation twin), log Z with its +-3 sigma band,
the log-likelihoods together; the values measured once (the final AIS log Z, log-likelihoods and effective
sample size) share one "final evaluation" panel that writes them out ("measured once" where they are not all
the last epoch's), and columns that never change are
written above the panels (``figure_layout`` decides which is which).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from natural_bm.io import atomic_path

__all__ = ["ESS_KEYS", "FINAL_PANEL", "LOGZ_KEYS", "ONCE_PANEL_TITLE", "UNITS", "figure_layout", "history_frame",
           "panels", "plot_history", "y_label"]

LOGZ_KEYS = ("logZ", "logZ_lo", "logZ_hi", "logZ_exact", "logZ_trajectory")
ESS_KEYS = ("ais_ess", "ess_trajectory")
#: the title of the panel of the values measured once, typically at the last epoch (log Z, log-likelihoods, ESS)
FINAL_PANEL = "final evaluation"
#: that panel's title when its values are not all the last epoch's (e.g. a run still in progress)
ONCE_PANEL_TITLE = "measured once"

#: y-axis labels (with units) of the panels; other panels are labelled with their key
UNITS = {
    "log Z": "log Z (nats)",
    "log-likelihood": "log-likelihood (nats per image)",
    "loss": "cross-entropy (nats per image)",
    "pll": "pseudo-log-likelihood (nats per image)",
    "free_energy_gap": "free energy gap (nats)",
    "effective sample size": "effective AIS runs",
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
    """Which columns go on which panel: each metric with its ``val_`` twin, log Z (with its band, the
    exact value and the trajectory), log-likelihoods (and their trajectories), the effective sample size.

    Columns that are entirely NaN are left out. ``figure_layout`` then takes out the values measured once
    and the columns that never change.
    """
    cols = [c for c in df.columns if df[c].notna().any() and np.issubdtype(df[c].dtype, np.number)]
    out: dict[str, list[str]] = {}
    z = [c for c in LOGZ_KEYS if c in cols]
    if z:
        out["log Z"] = z
    ll = [c for c in cols if c.endswith(("_ll", "_ll_exact", "_ll_trajectory"))]
    if ll:
        out["log-likelihood"] = ll
    ess = [c for c in ESS_KEYS if c in cols]
    if ess:
        out["effective sample size"] = ess
    for c in cols:
        if c in z or c in ll or c in ess or c.startswith("val_"):
            continue
        out[c] = [c] + ([f"val_{c}"] if f"val_{c}" in cols else [])
    for c in cols:  # validation metrics without a training twin
        if c.startswith("val_") and c not in ll and c[4:] not in out:
            out[c] = [c]
    return out


def _format_value(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() or abs(value) < 1e-3 else f"{value:.4g}"


def _constant_text(series: pd.Series) -> str | None:
    """How a column that tells nothing as a curve reads as text, else None: ``"momentum = 0.9"`` for a
    constant, ``"iterations +600 per epoch"`` for an integer counter that grows by the same step every
    epoch (OptimizerSpy's ``iterations``; at least three values, so that a falling metric is drawn)."""
    s = series.dropna()
    if len(s) < 2:
        return None
    values = s.to_numpy(dtype=float)
    if np.all(values == values[0]):
        return f"{series.name} = {_format_value(values[0])}"
    epochs = s.index.to_numpy(dtype=float)
    steps = np.diff(values) / np.diff(epochs) if np.all(np.diff(epochs) > 0) else None
    if (len(s) >= 3 and steps is not None and np.all(values == np.round(values)) and np.all(steps == steps[0])
            and steps[0] > 0):
        return f"{series.name} {steps[0]:+g} per epoch ({_format_value(values[-1])} at epoch {s.index[-1]})"
    return None


def figure_layout(df: pd.DataFrame) -> tuple[dict[str, list[str]], list[str]]:
    """The panels ``plot_history`` draws and the notes it writes above them.

    ``panels`` groups the columns; a group whose every column holds one value (log Z, log-likelihoods and
    the effective sample size measured at the last epoch) moves to one shared panel, ``FINAL_PANEL``,
    that writes each value out; a group of one column that never changes (a fixed momentum, OptimizerSpy's
    ``decay`` and ``nesterov``) or an integer counter that grows by the same step every epoch
    (``iterations``) becomes a note. Returns ``({panel title: columns}, notes)``, the final panel last.
    """
    layout, final, notes = {}, [], []
    for name, cols in panels(df).items():
        if all(df[c].notna().sum() <= 1 for c in cols):
            final += cols
            continue
        text = _constant_text(df[cols[0]]) if len(cols) == 1 else None
        if text is not None:
            notes.append(text)
            continue
        layout[name] = cols
    if final:
        layout[FINAL_PANEL] = final
    return layout, notes


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


def _final_rows(df: pd.DataFrame, cols: list[str]) -> list[tuple[str, str, int | None]]:
    """(label, value text, epoch) for each row of the final-evaluation panel: log Z, then its +-3 sigma
    band on a row of its own (epoch None: no marker), log-likelihoods in nats per image and the
    trajectory's ``logZ_drift`` in nats, the effective sample size, other values as they are."""
    rows: list[tuple[str, str, int | None]] = []
    for c in cols:
        s = df[c].dropna()
        if s.empty or c in ("logZ_lo", "logZ_hi"):
            continue
        epoch, value = s.index[-1], float(s.iloc[-1])
        if c == "logZ":
            rows.append(("log Z (AIS)", f"{value:.2f} nats", epoch))
            lo = df["logZ_lo"].get(epoch, np.nan) if "logZ_lo" in cols else np.nan
            hi = df["logZ_hi"].get(epoch, np.nan) if "logZ_hi" in cols else np.nan
            if np.isfinite(hi):
                rows.append(("  ±3σ", f"{lo:.2f} to {hi:.2f}" if np.isfinite(lo) else
                             f"up to {hi:.2f}, unbounded below", None))
        elif c == "logZ_exact":
            rows.append(("log Z (exact)", f"{value:.2f} nats", epoch))
        elif c == "ais_ess":
            rows.append(("effective AIS runs", f"{value:.1f}", epoch))
        elif c.endswith(("_ll", "_ll_exact", "_ll_trajectory")) or c == "logZ_drift":
            rows.append((c, f"{value:.2f} nats", epoch))
        else:
            rows.append((c, _format_value(value), epoch))
    return rows


def _draw_final_panel(ax, df: pd.DataFrame, cols: list[str]) -> None:
    """The values measured once, written out one per row (a marker and the number), with the epoch in the
    title when they share one; the font shrinks so that the longest row fits the panel."""
    rows = _final_rows(df, cols)
    epochs = {e for _, _, e in rows if e is not None}
    one_epoch = len(epochs) == 1
    # "final evaluation" only where the values are the last epoch's (a run still going, or a re-anchoring
    # done once, has single values from earlier epochs)
    last = df.index.max() if len(df.index) else None
    name = FINAL_PANEL if all(e == last for e in epochs) else ONCE_PANEL_TITLE
    ax.set_title(f"{name} (epoch {next(iter(epochs))})" if one_epoch else name)
    ax.axis("off")
    width = max((len(label) for label, _, _ in rows), default=0)
    lines = [f"{label:<{width}}  {text}" + ("" if one_epoch or e is None else f"  (epoch {e})")
             for label, text, e in rows]
    fig_w = ax.figure.get_size_inches()[0]
    box = ax.get_position()
    inches = 0.93 * box.width * fig_w
    longest = max((len(line) for line in lines), default=1)
    size = max(5.0, min(10.0, 150.0 / max(1, len(rows)), inches * 72 / (0.61 * longest)))  # monospace: 0.6 em
    marker = 0
    for i, ((_, _, e), line) in enumerate(zip(rows, lines, strict=True)):
        y = 1.0 - (i + 0.5) / max(len(rows), 6)
        if e is not None:
            ax.plot([0.02], [y], "o", color=f"C{marker % 10}", transform=ax.transAxes, clip_on=False)
            marker += 1
        ax.text(0.07, y, line, transform=ax.transAxes, va="center", ha="left", family="monospace", fontsize=size)


def _tracked(column: str) -> str:
    """The quantity a column measures: ``train_ll`` for ``train_ll_trajectory``, ``ais_ess`` for
    ``ess_trajectory``, the column itself otherwise."""
    return "ais_ess" if column == "ess_trajectory" else column.removesuffix("_trajectory")


def _note_lines(notes: list[str], width: int) -> list[str]:
    """The notes above the panels, "unchanged over the run: lr = 0.05, momentum = 0.9" then the counters,
    in lines of about ``width`` characters broken between notes only."""
    constants = [n for n in notes if " = " in n]
    pieces = [("unchanged over the run: " if i == 0 else "") + n + ("," if i < len(constants) - 1 else "")
              for i, n in enumerate(constants)]
    pieces += [n for n in notes if " = " not in n]
    lines: list[str] = []
    for piece in pieces:
        if lines and len(lines[-1]) + 1 + len(piece) <= width:
            lines[-1] += ("; " if lines[-1][-1] != "," else " ") + piece
        else:
            lines.append(piece)
    return lines


def plot_history(source, path: str | os.PathLike | None = None, title: str | None = None):
    """Draw a run's training curves: every metric (training and validation on shared axes), log Z with its
    +-3 sigma band, its exact value and its trajectory, log-likelihoods (and their trajectories) together,
    the effective sample size. Values measured once (log Z, log-likelihoods and ESS at the last epoch) are
    written out in one shared "final evaluation" panel instead of a panel each; columns that never change
    (and per-epoch counters) are written above the panels instead of drawn as flat lines
    (``figure_layout``). NaN cells and missing columns are skipped. Saves a PNG atomically when ``path``
    is given; returns the matplotlib figure and the panel layout ({panel title: columns})."""
    df = history_frame(source)
    layout, notes = figure_layout(df)
    n = max(1, len(layout))
    n_cols = 2 if n == 4 else min(3, n)  # four panels as 2 x 2, not 3 + 1 with two blank places
    n_rows = math.ceil(n / n_cols)
    note_lines = _note_lines(notes, int(60 * n_cols))  # (small text: about 13 characters an inch)
    title_space = (0.35 if title else 0.0) + 0.2 * len(note_lines)  # inches above the panels
    # a Figure of its own with the Agg canvas, not pyplot: no global backend is chosen for the caller
    fig = Figure(figsize=(4.5 * n_cols, 3.2 * n_rows + title_space))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    _fixed_margins(fig, n_rows, n_cols, title_space)  # (first: the final panel sizes its text to its axes)
    x = df.index.to_numpy()
    for ax, (name, cols) in zip(axes.flat, layout.items(), strict=False):
        if name == FINAL_PANEL:
            _draw_final_panel(ax, df, cols)
            continue
        # a trajectory takes the colour of the quantity it tracks (train_ll_trajectory that of train_ll)
        bases = list(dict.fromkeys(_tracked(c) for c in cols if c not in ("logZ_lo", "logZ_hi", "logZ_exact")))
        for c in cols:
            s = df[c].notna()
            if c in ("logZ_lo", "logZ_hi"):
                continue
            color = None if c == "logZ_exact" else f"C{bases.index(_tracked(c)) % 10}"
            if c == "logZ":
                ax.plot(x[s], df["logZ"][s], "o-", label="AIS log Z")
                if "logZ_lo" in cols and "logZ_hi" in cols:
                    _plot_logz_band(ax, x[s], df["logZ"][s].to_numpy(), df["logZ_lo"][s].to_numpy(),
                                    df["logZ_hi"][s].to_numpy())
            elif c == "logZ_exact":
                ax.plot(x[s], df["logZ_exact"][s], "k--", marker="x", markersize=9, label="exact")
            elif c.endswith("_trajectory"):
                ax.plot(x[s], df[c][s], "--", marker="." if s.sum() < 30 else None, color=color, label=c)
            else:
                ax.plot(x[s], df[c][s], "o-" if s.sum() < 30 else "-", color=color, label=c)
        values = df[cols].to_numpy(dtype=float)
        positive = values[np.isfinite(values)]
        if name == "lr" and positive.size and positive.min() > 0 and positive.max() > 10 * positive.min():
            ax.set_yscale("log")  # a decaying learning rate: each halving the same height
        ax.set_title(name)
        ax.set_xlabel("epoch (as in log.csv: 0 is the first)")
        ax.set_ylabel(y_label(name))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(x):  # every panel spans the same epochs, also one that has a value at one epoch only
            ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(layout):]:
        ax.axis("off")
    height = fig.get_size_inches()[1]
    top = 0.1 + (0.35 if title else 0.0)  # inches from the top edge
    if title:
        fig.suptitle(title, y=1 - 0.1 / height, va="top")
    for line in note_lines:
        fig.text(0.5, 1 - top / height, line, ha="center", va="top", fontsize="small", color="0.25")
        top += 0.2
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    return fig, layout
