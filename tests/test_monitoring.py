"""Pictures and monitoring callbacks, tested by reading back what they wrote."""


import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from natural_bm import RBM, SGD, Adam
from natural_bm.callbacks import (
    AISCallback,
    CSVLogger,
    LearningRateScheduler,
    MomentumRateScheduler,
    OptimizerSpy,
    PeriodicSave,
    PlotCallback,
    SampleCallback,
    SummaryCallback,
    load_training_state,
)
from natural_bm.callbacks.summary_callback import summarize
from natural_bm.datasets import bars_and_stripes
from natural_bm.viz import history_frame, image_grid, plot_filters, plot_history, read_tiles

X = bars_and_stripes(200, 3, seed=0)


def test_image_grid_png_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = rng.random((7, 4 * 5))
    path = tmp_path / "grid.png"
    img = image_grid(arrays, (4, 5), n_cols=3, padding=1, path=path)
    decoded = Image.open(path)
    assert decoded.size == (3 * 6 + 1, 3 * 5 + 1) and decoded.mode == "L"  # (width, height)
    np.testing.assert_array_equal(np.asarray(decoded), img)
    tiles = read_tiles(path, (4, 5), n=7, n_cols=3)
    np.testing.assert_allclose(tiles, arrays, atol=0.5 / 255 + 1e-12)
    scaled = tmp_path / "scaled.png"
    image_grid(arrays, (4, 5), n_cols=3, scale=3, path=scaled)
    assert Image.open(scaled).size == (3 * 19, 3 * 16)
    np.testing.assert_allclose(read_tiles(scaled, (4, 5), 7, 3, scale=3), arrays, atol=0.5 / 255 + 1e-12)


def test_image_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        image_grid(np.zeros((2, 10)), (3, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_grid(np.full((2, 9), 2.0), (3, 3))
    with pytest.raises(ValueError, match="NaN"):
        image_grid(np.full((2, 9), np.nan), (3, 3))


def test_plot_filters_normalises_each_receptive_field(tmp_path):
    m = RBM(12, 5, seed=0)
    img = plot_filters(m, (3, 4), path=tmp_path / "f.png", n_cols=5, scale=1)
    W = m.W.numpy().T
    tiles = read_tiles(tmp_path / "f.png", (3, 4), 5, 5)
    expected = (W - W.min(1, keepdims=True)) / (W.max(1, keepdims=True) - W.min(1, keepdims=True))
    np.testing.assert_allclose(tiles, expected, atol=0.5 / 255 + 1e-6)
    assert img.shape == (5, 26)


def test_sample_callback_grids(tmp_path):
    m = RBM(9, 4, seed=0).compile(SGD(0.1), "cd")
    cb = SampleCallback(m, tmp_path / "s_{epoch:02d}.png", n_chains=3, n_samples=4, plot_every=5,
                        epoch_ls=[1, 2], image_shape=(3, 3), seed=1, scale=1)
    assert SampleCallback(m, image_shape=(3, 3)).scale == 6 and SampleCallback(m).scale == 1  # auto: >= 16 px
    m.fit(X, batch_size=50, epochs=3, callbacks=[cb], verbose=0, seed=0)
    assert [p.name for p in cb.saved] == ["s_01.png", "s_02.png"]
    img = Image.open(cb.saved[-1])
    assert img.size == (4 * 4 + 1, 3 * 4 + 1)
    tiles = read_tiles(cb.saved[-1], (3, 3), 12, 4)
    np.testing.assert_allclose(tiles, cb.last_samples, atol=0.5 / 255 + 1e-9)


def test_sample_tiles_are_visible_means_analytically():
    """With W = 0, p(v | h) = sigmoid(vbias) whatever h: every tile equals it."""
    m = RBM(6, 3)
    with torch.no_grad():
        m.W.zero_()
        m.vbias.copy_(torch.linspace(-2, 2, 6))
    cb = SampleCallback(m, "unused.png", n_chains=2, n_samples=3, plot_every=2, image_shape=(2, 3))
    cb.params = {}
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        cb.savename = f"{d}/x.png"
        cb.sample(0)
    np.testing.assert_allclose(cb.last_samples, np.tile(torch.sigmoid(m.vbias).numpy(), (6, 1)), rtol=1e-6)


def _fit_logged(tmp_path, extra=(), epochs=4, with_ais=True):
    m = RBM(9, 5, seed=0).compile(SGD(0.1, momentum=0.5), "pcd", n_chains=20)
    csv = tmp_path / "log.csv"
    cbs = [PlotCallback(tmp_path, csv), SummaryCallback(tmp_path, csv), CSVLogger(csv), *extra]
    if with_ais:
        cbs.append(AISCallback(m, n_runs=20, n_betas=300, epoch_ls=[1, 3], exact=True, compile=False))
    hist = m.fit(X, batch_size=50, epochs=epochs, validation_data=X[:50], callbacks=cbs, verbose=0, seed=0)
    return m, hist, csv, cbs


def test_plot_callback_redraws_at_most_every_min_interval(tmp_path, monkeypatch):
    """A drawing costs seconds: with min_interval an epoch's end draws only once that long has passed since
    training began or since the last drawing, and the end of training draws what was left undrawn."""
    from natural_bm.callbacks import plot_callback

    clock, drawn = [0.0], []
    monkeypatch.setattr(plot_callback.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr("natural_bm.callbacks.plot_callback.plot_history",
                        lambda csv, path: (drawn.append(clock[0]), {}))
    csv = tmp_path / "log.csv"
    csv.write_text("epoch,loss\n0,1.0\n")

    def run(cb, epoch_times, end_time):
        drawn.clear()
        clock[0] = 100.0
        cb.on_train_begin()
        for epoch, t in enumerate(epoch_times):
            clock[0] = 100.0 + t
            cb.on_epoch_end(epoch)
        clock[0] = 100.0 + end_time
        cb.on_train_end()
        return [t - 100.0 for t in drawn]

    cb = PlotCallback(tmp_path, csv, min_interval=30)
    assert run(cb, [10, 20, 31, 40, 50, 61], 62) == [31, 61]  # the last epoch was drawn: nothing at the end
    assert run(cb, [10, 20, 31, 40], 45) == [31, 45]  # epoch 3 was not: the end draws it
    assert run(cb, [10, 20], 21) == [21]  # a short run: one drawing, at the end
    assert run(PlotCallback(tmp_path, csv), [1, 2, 3], 4) == [1, 2, 3]  # min_interval 0: every epoch
    with pytest.raises(ValueError, match="min_interval must be >= 0 seconds"):
        PlotCallback(tmp_path, csv, min_interval=-1)


def test_plot_and_summary_callbacks_read_the_csv(tmp_path):
    m, hist, csv, cbs = _fit_logged(tmp_path)
    plot, summary = cbs[0], cbs[1]
    assert Image.open(tmp_path / "history.png").size[0] > 100
    assert plot.layout["log Z"] == ["logZ", "logZ_lo", "logZ_hi", "logZ_exact"]
    assert plot.layout["loss"] == ["loss", "val_loss"] and plot.layout["pll"] == ["pll", "val_pll"]
    df = pd.read_csv(csv).set_index("epoch")
    text = (tmp_path / "summary.txt").read_text()
    for key, entry in summary.values.items():
        s = df[key].dropna()
        assert entry["final"] == pytest.approx(s.iloc[-1]) and entry["final_epoch"] == s.index[-1]
        if "best" in entry:
            best = s.max() if key in ("pll", "val_pll", "train_ll", "val_ll", "train_ll_exact", "val_ll_exact") \
                else s.min()
            assert entry["best"] == pytest.approx(best)
            assert f"{entry['best']:.4f}" in text
    assert summary.values["loss"]["best"] == pytest.approx(df["loss"].min())
    assert summary.values["val_pll"]["best"] == pytest.approx(df["val_pll"].max())
    assert "final log Z (epoch 3)" in text and '"pcd"' in text and "wall time" in text


def test_plot_history_copes_with_nan_and_missing_columns(tmp_path):
    df = pd.DataFrame({"epoch": [0, 1, 2], "loss": [3.0, np.nan, 1.0], "val_ll": [np.nan, np.nan, -5.0],
                       "logZ": [np.nan, 10.0, np.nan], "logZ_lo": [np.nan, -np.inf, np.nan],
                       "logZ_hi": [np.nan, 10.5, np.nan], "empty": [np.nan] * 3})
    csv = tmp_path / "odd.csv"
    df.to_csv(csv, index=False)
    _, layout = plot_history(csv, tmp_path / "odd.png")
    # 'empty' skipped, no val_loss; log Z and val_ll measured once: written out in the final panel
    assert layout == {"loss": ["loss"], "final evaluation": ["logZ", "logZ_lo", "logZ_hi", "val_ll"]}
    assert (tmp_path / "odd.png").is_file()
    # log Z at two epochs: a panel, the band of the -inf lower end a bar up to +3 sigma only and an arrow down
    twice = df.assign(logZ=[np.nan, 10.0, 11.0], logZ_lo=[np.nan, -np.inf, 10.25], logZ_hi=[np.nan, 10.5, 11.5],
                      val_ll=[np.nan, -6.0, -5.0])
    fig, layout = plot_history(twice.set_index("epoch"))
    assert set(layout) == {"log Z", "log-likelihood", "loss"} and layout["log Z"] == ["logZ", "logZ_lo", "logZ_hi"]
    ax = fig.axes[0]
    (unbounded,) = [c for c in ax.containers if "unbounded" in c.get_label()]
    np.testing.assert_allclose(unbounded.lines[2][0].get_segments()[0], [[1.0, 10.0], [1.0, 10.5]])
    (bounded,) = [c for c in ax.containers if "unbounded" not in c.get_label()]
    np.testing.assert_allclose(bounded.lines[2][0].get_segments()[0], [[2.0, 10.25], [2.0, 11.5]])
    arrow_tips = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert len(arrow_tips) == 1 and arrow_tips[0].get_ydata()[0] < 10.0  # below the estimate, inside the view
    assert ax.get_ylim()[0] <= arrow_tips[0].get_ydata()[0]
    finite = twice.assign(logZ_lo=[np.nan, 9.25, 10.25])  # finite bands: bars from -3 to +3 sigma, no arrow
    fig2, _ = plot_history(finite.set_index("epoch"))
    (bars2,) = fig2.axes[0].containers
    np.testing.assert_allclose(bars2.lines[2][0].get_segments()[0], [[1.0, 9.25], [1.0, 10.5]])
    assert not [ln for ln in fig2.axes[0].lines if ln.get_marker() == "v"]
    text, values = summarize(history_frame(csv))
    assert values["loss"] == {"final": 1.0, "final_epoch": 2, "best": 1.0, "best_epoch": 2}
    assert "empty" not in values
    assert "effective AIS runs" not in text  # no ais_ess column
    df["ais_ess"] = [np.nan, 2.88, np.nan]
    text, values = summarize(df.set_index("epoch"))
    assert "3-sigma band [-inf, 10.5000], 2.9 effective AIS runs (too few: the band is not trustworthy)" in text
    assert "best" not in values["ais_ess"]


def test_optimizer_spy_and_schedules(tmp_path):
    m = RBM(9, 5, seed=0).compile(SGD(0.1, momentum=0.5, decay=0.01), "cd")
    lr = LearningRateScheduler(lambda epoch: 0.1 * 0.5**epoch)
    mom = MomentumRateScheduler(lambda epoch, current: min(0.9, current + 0.1))
    csv = tmp_path / "log.csv"
    hist = m.fit(X, batch_size=50, epochs=3, callbacks=[CSVLogger(csv), lr, mom, OptimizerSpy()], verbose=0,
                 seed=0)
    df = pd.read_csv(csv)
    np.testing.assert_allclose(df["lr"], [0.1, 0.05, 0.025])
    np.testing.assert_allclose(df["momentum"], [0.6, 0.7, 0.8])
    np.testing.assert_allclose(df["decay"], 0.01)
    np.testing.assert_allclose(df["iterations"], [4, 8, 12])
    np.testing.assert_allclose(df["lr_t"], [0.1 / 1.04, 0.05 / 1.08, 0.025 / 1.12])
    assert m.optimizer.lr == 0.025 and m.optimizer.momentum == pytest.approx(0.8)
    assert hist.history["lr"] == [0.1, 0.05, 0.025]
    adam = RBM(9, 5).compile(Adam(0.01), "cd")
    adam.fit(X, epochs=2, callbacks=[MomentumRateScheduler(lambda e: 0.8)], verbose=0, seed=0)
    assert adam.optimizer.beta_1 == 0.8
    with pytest.raises(ValueError, match="schedule returned"):
        RBM(9, 5).fit(X, epochs=1, callbacks=[LearningRateScheduler(lambda e: -1)], verbose=0)


def test_periodic_save_files_and_exact_resume(tmp_path):
    def make():
        return RBM(9, 5, seed=0).compile(SGD(0.1, momentum=0.9), "pcd", n_chains=13)

    full = make()
    full.fit(X, batch_size=20, epochs=4, verbose=0, seed=3)
    m = make()
    ps = PeriodicSave(tmp_path / "w_{epoch:02d}.pt", epoch_ls=[1, 3], opt_path=tmp_path / "opt.pt")
    m.fit(X, batch_size=20, epochs=4, callbacks=[ps], verbose=0, seed=3)
    assert [p.name for p in ps.saved] == ["w_01.pt", "opt_epoch0001.pt", "w_03.pt", "opt_epoch0003.pt"]
    resumed = RBM(9, 5)
    resumed.load_weights(tmp_path / "w_01.pt")
    assert not resumed.compiled  # weights only
    load_training_state(resumed, tmp_path / "opt_epoch0001.pt")
    resumed.fit(X, batch_size=20, epochs=4, initial_epoch=2, verbose=0, seed=3)
    for k in full.param_names:
        assert torch.equal(getattr(full, k), getattr(resumed, k))
    final = RBM.load(tmp_path / "w_03.pt")
    assert torch.equal(final.W, full.W)
    with pytest.raises(FileNotFoundError):
        load_training_state(resumed, tmp_path / "missing.pt")


def test_callback_order_puts_producers_before_loggers_before_readers(tmp_path):
    from natural_bm.training.fit import _order

    a, c, p, s, o = (AISCallback(), CSVLogger(tmp_path / "x.csv"), PlotCallback(tmp_path, tmp_path / "x.csv"),
                     SummaryCallback(tmp_path, tmp_path / "x.csv"), OptimizerSpy())
    assert _order([p, s, c, a, o]) == [a, o, c, p, s]


def test_plot_history_labels_units_integer_epochs_and_single_points(tmp_path):
    import pandas as pd

    from natural_bm.viz import plot_history

    csv = tmp_path / "log.csv"
    pd.DataFrame({"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.5], "logZ": [float("nan"), 9.0, 10.0],
                  "logZ_exact": [float("nan")] * 2 + [10.1]}).to_csv(csv, index=False)
    fig, _ = plot_history(csv, tmp_path / "h.png")
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert axes["log Z"].get_ylabel() == "log Z (nats)"
    assert axes["loss"].get_ylabel() == "cross-entropy (nats per image)"
    assert axes["loss"].get_xlabel().startswith("epoch")
    ticks = [t for t in axes["loss"].get_xticks() if 0 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks)
    exact = [line for line in axes["log Z"].get_lines() if line.get_label() == "exact"][0]
    assert exact.get_marker() == "x" and list(exact.get_xdata()) == [2]  # one point, drawn as a marker


def test_the_error_of_val_pll_is_n_visible_sd_over_root_n():
    """The formula the EarlyStopping and monitor docstrings quote: the pseudo-log-likelihood of n rows, from
    one flipped unit per row, has a standard error of n_visible * sd / sqrt(n), sd the spread over rows of
    one draw's per-unit terms; measured against the spread of 400 redraws on the same rows."""
    import math

    from conftest import random_rbm

    from natural_bm.rng import RandomSource

    model = random_rbm(20, 10, scale=1.0, seed=1)
    v = torch.as_tensor((np.random.default_rng(0).random((300, 20)) < 0.3).astype(np.float64))
    with torch.no_grad():
        means = np.array([float(model.pseudo_log_likelihood(v, RandomSource(s)).mean()) for s in range(400)])
        terms = model.pseudo_log_likelihood(v, RandomSource(1000)) / 20
    formula = 20 * float(terms.std()) / math.sqrt(300)
    assert 0.85 < formula / means.std() < 1.15 and means.std() > 0.5  # nats: far above float noise


def test_fit_without_pseudo_likelihood_trains_the_same_and_logs_no_pll():
    """``pseudo_likelihood=False`` drops the epoch-end ``pll`` (and its metric name): the weights are
    bit-identical to a run that logs it, since each epoch's stream is seeded afresh, and the validation
    keys stay."""
    x = bars_and_stripes(64, size=4)
    runs = {}
    for pll in (True, False):
        rbm = RBM(16, 8, seed=3)
        rbm.compile(SGD(0.1), "pcd", n_chains=10)
        history = rbm.fit(x, batch_size=8, epochs=3, verbose=0, seed=5, pseudo_likelihood=pll,
                          validation_data=x)
        runs[pll] = (rbm.W.clone(), history)
    assert torch.equal(runs[True][0], runs[False][0])
    assert "pll" in runs[True][1].history and len(runs[True][1].history["pll"]) == 3
    assert "pll" not in runs[False][1].history
    assert len(runs[False][1].history["val_pll"]) == 3  # the validation keys stay
    assert "pll" not in runs[False][1].params["metrics"] and "pll" in runs[True][1].params["metrics"]
