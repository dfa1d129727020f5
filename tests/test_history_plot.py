"""history.png without empty panels: values measured once share one "final evaluation" panel, columns that
never change are written above the panels, trajectories are curves. Checked on synthetic log.csv files by
reading the panels back from the figure's axes."""

import numpy as np
import pandas as pd
import pytest

from natural_bm.callbacks import PlotCallback
from natural_bm.viz import plot_history
from natural_bm.viz.history import FINAL_PANEL, ONCE_PANEL_TITLE, figure_layout

NAN = np.nan


def _demo_log(epochs: int = 30) -> pd.DataFrame:
    """The columns of the demo's log.csv (AIS at the last epoch only) and OptimizerSpy's."""
    rng = np.random.default_rng(0)
    e = np.arange(epochs)
    last = lambda value: [NAN] * (epochs - 1) + [value]  # noqa: E731
    return pd.DataFrame({
        "epoch": e, "loss": 180 * np.exp(-e / 8) + 80, "val_loss": 170 * np.exp(-e / 8) + 82,
        "pll": -160 + 2 * e + rng.normal(size=epochs), "val_pll": -158 + 2 * e + rng.normal(size=epochs),
        "free_energy_gap": rng.normal(size=epochs), "logZ": last(312.2081), "logZ_lo": last(312.0213),
        "logZ_hi": last(312.3667), "ais_ess": last(76.19), "train_ll": last(-127.8112), "val_ll": last(-128.0843),
        "lr": [0.002] * epochs, "momentum": [0.9] * epochs, "decay": [0.0] * epochs, "nesterov": [0.0] * epochs,
        "iterations": 600.0 * (e + 1),
    }).set_index("epoch")


def _panels(fig) -> list[str]:
    """The titles of the panels drawn (blank places of the grid have none)."""
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_single_values_share_one_final_panel_and_constants_become_text(tmp_path):
    df = _demo_log()
    csv = tmp_path / "log.csv"
    df.to_csv(csv)
    fig, layout = plot_history(csv, tmp_path / "history.png")
    assert _panels(fig) == ["loss", "pll", "free_energy_gap", f"{FINAL_PANEL} (epoch 29)"]
    assert len(fig.axes) == 4  # a 2 x 2 grid: no blank place, no panel of one dot or a flat line
    assert layout[FINAL_PANEL] == ["logZ", "logZ_lo", "logZ_hi", "train_ll", "val_ll", "ais_ess"]
    final = next(ax for ax in fig.axes if ax.get_title().startswith(FINAL_PANEL))
    text = "\n".join(_texts(final))
    last = df.iloc[-1]
    for expected in (f"{last.logZ:.2f} nats", f"{last.logZ_lo:.2f} to {last.logZ_hi:.2f}",
                     f"{last.train_ll:.2f} nats", f"{last.val_ll:.2f} nats", f"{last.ais_ess:.1f}"):
        assert expected in text, (expected, text)
    assert len([ln for ln in final.lines if ln.get_marker() == "o"]) == 4  # a marker per value, not the band
    notes = " ".join(t.get_text() for t in fig.texts)
    assert "unchanged over the run: lr = 0.002, momentum = 0.9, decay = 0, nesterov = 0" in notes
    assert "iterations +600 per epoch (18000 at epoch 29)" in notes
    assert (tmp_path / "history.png").stat().st_size > 10_000


def test_trajectories_are_curves_with_the_log_likelihoods_together():
    df = _demo_log(12)
    e = df.index.to_numpy()
    df["logZ_trajectory"] = 300 + e
    df["train_ll_trajectory"] = -140 + e
    df["val_ll_trajectory"] = -141 + e
    df["ess_trajectory"] = 50 + e
    fig, layout = plot_history(df)
    assert layout["log Z"] == ["logZ", "logZ_lo", "logZ_hi", "logZ_trajectory"]
    assert layout["log-likelihood"] == ["train_ll", "val_ll", "train_ll_trajectory", "val_ll_trajectory"]
    assert layout["effective sample size"] == ["ais_ess", "ess_trajectory"]
    assert FINAL_PANEL not in layout  # the final values sit on their curves' panels
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    curves = {ln.get_label(): ln for ln in axes["log-likelihood"].get_lines()}
    assert len(curves["train_ll_trajectory"].get_xdata()) == 12 and len(curves["val_ll_trajectory"].get_xdata()) == 12
    assert list(curves["train_ll"].get_xdata()) == [11]  # the final AIS value: a marked point
    assert len(axes["log Z"].containers) == 1  # its +-3 sigma error bar
    assert axes["effective sample size"].get_ylabel() == "effective AIS runs"


def test_what_stays_a_panel_and_what_moves():
    df = pd.DataFrame({"epoch": [0, 1, 2, 3], "loss": [4.0, 3.0, 2.5, 2.0], "val_loss": [4.0] * 4,
                       "k": [1.0] * 4, "lr": [1e-2, 5e-3, 1e-3, 1e-4], "train_ll": [NAN, -90.0, NAN, -80.0],
                       "logZ": [NAN, 10.0, NAN, NAN], "logZ_hi": [NAN, 10.5, NAN, NAN],
                       "logZ_lo": [NAN, -np.inf, NAN, NAN], "steps": [1.0, 3.0, 4.0, 9.0]}).set_index("epoch")
    layout, notes = figure_layout(df)
    assert layout["loss"] == ["loss", "val_loss"]  # a constant twin of a changing metric stays with it
    assert layout["log-likelihood"] == ["train_ll"]  # two values: a curve
    assert "steps" in layout  # an integer column that does not grow evenly is drawn
    assert figure_layout(df.assign(steps=[9.0, 7.0, 5.0, 3.0]))[0]["steps"] == ["steps"]  # nor one that falls
    assert notes == ["k = 1"]
    assert layout[FINAL_PANEL] == ["logZ", "logZ_lo", "logZ_hi"]  # one AIS at epoch 1
    fig, _ = plot_history(df)
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert axes["lr"].get_yscale() == "log"  # a decaying learning rate spans decades
    assert axes["loss"].get_yscale() == "linear"
    final = axes[f"{ONCE_PANEL_TITLE} (epoch 1)"]  # (not the last epoch's: not called the final evaluation)
    assert any("up to 10.50, unbounded below" in t for t in _texts(final))


def test_values_at_different_epochs_name_them_and_a_one_epoch_run_is_one_table():
    df = pd.DataFrame({"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.0], "logZ_exact": [NAN, 5.0, NAN],
                       "test_ll": [NAN, NAN, -7.0]}).set_index("epoch")
    fig, layout = plot_history(df)
    assert _panels(fig) == ["loss", ONCE_PANEL_TITLE]  # (not all the last epoch's)
    final = fig.axes[1]
    texts = _texts(final)
    assert any("log Z (exact)" in t and "5.00 nats" in t and "(epoch 1)" in t for t in texts), texts
    assert any("test_ll" in t and "-7.00 nats" in t and "(epoch 2)" in t for t in texts), texts
    one = pd.DataFrame({"epoch": [0], "loss": [3.0], "pll": [-9.0], "lr": [0.1]}).set_index("epoch")
    fig1, layout1 = plot_history(one)
    assert _panels(fig1) == [f"{FINAL_PANEL} (epoch 0)"] and layout1 == {FINAL_PANEL: ["loss", "pll", "lr"]}


@pytest.mark.parametrize("title", [None, "run 7"])
def test_plot_callback_draws_the_layout(tmp_path, title):
    csv = tmp_path / "log.csv"
    _demo_log().to_csv(csv)
    cb = PlotCallback(tmp_path, csv)
    assert cb.plot() == tmp_path / "history.png" and (tmp_path / "history.png").is_file()
    assert list(cb.layout) == ["loss", "pll", "free_energy_gap", FINAL_PANEL]
    fig, _ = plot_history(csv, title=title)
    if title:
        assert fig._suptitle.get_text() == title
        top_note = max(t.get_position()[1] for t in fig.texts if t is not fig._suptitle)
        assert top_note < fig._suptitle.get_position()[1]  # the notes sit below the title


def test_single_values_of_an_earlier_epoch_are_not_called_the_final_evaluation(tmp_path):
    """A run in progress (or one whose trajectory re-anchored once) has single values before its last epoch:
    their panel says "measured once (epoch N)", not "final evaluation"."""
    df = pd.DataFrame({"loss": [3.0, 2.5, 2.2, 2.0, 1.9], "logZ_drift": [np.nan, -1.4, np.nan, np.nan, np.nan]},
                      index=pd.Index(range(5), name="epoch"))
    fig, layout = plot_history(df)
    assert layout[FINAL_PANEL] == ["logZ_drift"]
    assert f"{ONCE_PANEL_TITLE} (epoch 1)" in _panels(fig) and not any(t.startswith(FINAL_PANEL) for t in _panels(fig))
    once = next(ax for ax in fig.axes if ax.get_title().startswith(ONCE_PANEL_TITLE))
    assert any("logZ_drift" in t and "-1.40 nats" in t for t in _texts(once))
