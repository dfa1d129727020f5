"""Fit loop, hook order, logs, and the core callbacks read back."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import random_rbm

from natural_bm import RBM
from natural_bm.callbacks import (
    BaseLogger,
    Callback,
    CallbackList,
    CSVLogger,
    LambdaCallback,
    ProgbarLogger,
    TerminateOnNaN,
)
from natural_bm.datasets import bars_and_stripes


class Silent(Callback):
    """Records every hook called on it; overrides none (so the batch hooks are not called: see below)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        attr = object.__getattribute__(self, name)
        if name.startswith("on_") and callable(attr):
            calls = object.__getattribute__(self, "calls")

            def wrapped(*args, **kwargs):
                calls.append(name)
                return attr(*args, **kwargs)

            return wrapped
        return attr


class Recorder(Silent):
    """Records every hook, and overrides the batch hooks as a callback that acts on batches does."""

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


def _model(seed=0):
    return RBM(9, 5, seed=seed).compile("sgd", "cd")


def test_hook_order_in_fit_evaluate_and_transform():
    x = bars_and_stripes(40, 3, seed=0)
    rec = Recorder()
    m = _model()
    m.fit(x, batch_size=20, epochs=2, validation_data=x[:20], callbacks=[rec], verbose=0, seed=0)
    batch = ["on_train_batch_begin", "on_batch_begin", "on_train_batch_end", "on_batch_end"]
    epoch = (["on_epoch_begin"] + batch * 2
             + ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end", "on_epoch_end"])
    assert rec.calls == ["on_train_begin"] + epoch * 2 + ["on_train_end"]
    rec.calls.clear()
    m.evaluate(x, batch_size=40, callbacks=[rec])
    assert rec.calls == ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end"]
    rec.calls.clear()
    m.transform(x, batch_size=30, callbacks=[rec])
    predict_batch = ["on_predict_batch_begin", "on_predict_batch_end"]
    assert rec.calls == ["on_predict_begin"] + predict_batch * 2 + ["on_predict_end"]


def test_batch_hooks_are_called_only_on_callbacks_that_override_them():
    """As Keras: a batch hook runs every update, so a callback that does nothing there is not called there
    (its epoch and train hooks still are, in order)."""
    silent = Silent()
    _model().fit(bars_and_stripes(40, 3, seed=0), batch_size=20, epochs=2, callbacks=[silent], verbose=0, seed=0)
    assert silent.calls == ["on_train_begin"] + ["on_epoch_begin", "on_epoch_end"] * 2 + ["on_train_end"]


def test_on_batch_aliases_are_called_and_params_set():
    seen = []

    class Old(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, logs["size"]))

    cb = Old()
    _model().fit(bars_and_stripes(50, 3), batch_size=20, epochs=1, callbacks=[cb], verbose=0, seed=0)
    assert seen == [(0, 20), (1, 20), (2, 10)]
    assert cb.params["steps"] == 3 and cb.params["samples"] == 50 and cb.params["epochs"] == 1
    assert isinstance(cb.model, RBM)


def test_stop_training_is_honoured():
    stopper = LambdaCallback(on_batch_end=lambda b, logs: setattr(stopper.model, "stop_training", b == 1))
    m = _model()
    hist = m.fit(bars_and_stripes(100, 3), batch_size=10, epochs=5, callbacks=[stopper], verbose=0, seed=0)
    assert hist.epoch == [0]


def test_terminate_on_nan_stops_at_the_bad_batch():
    m = _model()

    def poison(batch, logs):
        if batch == 2:
            with torch.no_grad():
                m.W.fill_(float("nan"))

    t = TerminateOnNaN()
    hist = m.fit(bars_and_stripes(100, 3), batch_size=10, epochs=3,
                 callbacks=[LambdaCallback(on_batch_begin=poison), t], verbose=0, seed=0)
    assert t.terminated_on_batch == 2
    assert hist.epoch == [0]


def test_epoch_loss_is_size_weighted_mean_of_batch_losses():
    batch_losses = []
    rec = LambdaCallback(on_batch_end=lambda b, logs: batch_losses.append((logs["loss"], logs["size"])))
    hist = _model().fit(bars_and_stripes(50, 3), batch_size=20, epochs=1, callbacks=[rec], verbose=0, seed=0)
    expected = sum(loss * n for loss, n in batch_losses) / 50
    assert hist.history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_batch_loss_is_reconstruction_cross_entropy():
    """The logged loss equals -sum v log r + (1-v) log(1-r) computed by hand."""
    m = random_rbm(6, 4, seed=1, dtype=torch.float32)
    m.compile("sgd", "cd")
    x = torch.from_numpy((np.random.default_rng(0).random((8, 6)) < 0.5).astype(np.float32))
    from natural_bm.rng import RandomSource

    g = RandomSource(7)
    _, info, _ = m.trainer.algorithm.step(m, x, None, g)
    loss = info.loss
    g = RandomSource(7)
    h = g.bernoulli(m.prob_h_given_v(x))
    r = m.prob_v_given_h(h).double()
    ref = -(x * torch.log(r) + (1 - x) * torch.log1p(-r)).sum(1)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-5)


def test_validation_keys_and_free_energy_gap():
    x = bars_and_stripes(200, 3, seed=0)
    xv = bars_and_stripes(100, 3, seed=1)
    m = _model()
    hist = m.fit(x, batch_size=50, epochs=2, validation_data=xv, verbose=0, seed=0)
    assert set(hist.history) == {"loss", "pll", "val_loss", "val_pll", "free_energy_gap"}
    gap = m.free_energy(torch.from_numpy(xv)).mean() - m.free_energy(torch.from_numpy(x)).mean()
    assert hist.history["free_energy_gap"][-1] == pytest.approx(gap.item(), abs=1e-4)


def test_csv_logger_round_trip_and_history_equal(tmp_path):
    path = tmp_path / "log.csv"
    x = bars_and_stripes(100, 3, seed=0)
    m = _model()
    hist = m.fit(x, batch_size=25, epochs=3, validation_data=x[:50], callbacks=[CSVLogger(path)], verbose=0, seed=0)
    df = pd.read_csv(path)
    assert list(df["epoch"]) == [0, 1, 2]
    for key, values in hist.history.items():
        np.testing.assert_allclose(df[key].to_numpy(), values, rtol=1e-15)
    pd.testing.assert_frame_equal(hist.to_dataframe().reset_index()[df.columns], df, check_dtype=False)


def test_csv_logger_append_continues_file(tmp_path):
    path = tmp_path / "log.csv"
    x = bars_and_stripes(60, 3, seed=0)
    m = _model()
    m.fit(x, batch_size=30, epochs=2, callbacks=[CSVLogger(path)], verbose=0, seed=0)
    m.fit(x, batch_size=30, epochs=4, initial_epoch=2, callbacks=[CSVLogger(path, append=True)], verbose=0, seed=0)
    df = pd.read_csv(path)
    assert list(df["epoch"]) == [0, 1, 2, 3]
    assert path.read_text().count("epoch") == 1
    m.fit(x, batch_size=30, epochs=1, callbacks=[CSVLogger(path, separator=";")], verbose=0, seed=0)
    assert list(pd.read_csv(path, sep=";")["epoch"]) == [0]


def test_csv_logger_late_key_gets_column_with_nan(tmp_path):
    path = tmp_path / "log.csv"
    late = LambdaCallback(on_epoch_end=lambda e, logs: logs.update({"extra": 1.5}) if e == 1 else None)
    hist = _model().fit(bars_and_stripes(40, 3), batch_size=20, epochs=2, callbacks=[late, CSVLogger(path)],
                        verbose=0, seed=0)
    df = pd.read_csv(path)
    assert math.isnan(df["extra"][0]) and df["extra"][1] == 1.5
    assert math.isnan(hist.history["extra"][0]) and hist.history["extra"][1] == 1.5


def test_base_logger_stateful_metrics():
    bl = BaseLogger(stateful_metrics=["count"])
    bl.on_epoch_begin(0)
    bl.on_train_batch_end(0, {"size": 10, "loss": 1.0, "count": 3})
    bl.on_train_batch_end(1, {"size": 30, "loss": 3.0, "count": 7})
    logs = {}
    bl.on_epoch_end(0, logs)
    assert logs == {"loss": 2.5, "count": 7}


def test_callback_list_warns_about_slow_hooks():
    import time

    class Slow(Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.01)

    cbl = CallbackList([Slow()], queue_length=5, min_slow_seconds=0.001)
    with pytest.warns(RuntimeWarning, match="Slow.on_train_batch_end.*slow"):
        for b in range(4):
            cbl.on_train_batch_begin(b, {})
            cbl.on_train_batch_end(b, {})
    assert len(cbl.timings[("Slow", "on_train_batch_end")]) == 4
    fast = CallbackList([Callback()], min_slow_seconds=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for b in range(4):
            fast.on_train_batch_begin(b, {})
            time.sleep(0.005)
            fast.on_train_batch_end(b, {})


@pytest.mark.parametrize("mode,total", [("steps", 5), ("samples", 100)])
def test_progbar_counts(mode, total):
    import io

    buf = io.StringIO()
    pb = ProgbarLogger(count_mode=mode, file=buf)
    _model().fit(bars_and_stripes(100, 3), batch_size=20, epochs=1, callbacks=[pb], verbose=0, seed=0)
    # verbose=0 in fit, but the explicit ProgbarLogger reads verbose from params: silent
    assert buf.getvalue() == ""
    pb.params = {"verbose": 1, "epochs": 1, "steps": 5, "samples": 100}
    pb.on_train_begin()
    pb.on_epoch_begin(0)
    assert pb.bar.total == total
    for b in range(5):
        pb.on_train_batch_end(b, {"size": 20, "loss": 1.0})
    assert pb.bar.n == total
    pb.on_epoch_end(0, {"loss": 1.0})
    assert "loss: 1.0000" in buf.getvalue()


def test_lambda_callback_rejects_unknown_hook():
    with pytest.raises(ValueError, match="on_epoch_finish"):
        LambdaCallback(on_epoch_finish=print)


def test_transform_returns_hidden_probabilities_in_input_type():
    m = random_rbm(6, 4, dtype=torch.float32)
    x = (np.random.default_rng(0).random((10, 6)) < 0.5).astype(np.float32)
    out = m.transform(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, m.prob_h_given_v(torch.from_numpy(x)).numpy(), rtol=1e-6)
    assert isinstance(m.transform(torch.from_numpy(x)), torch.Tensor)


def test_evaluate_returns_documented_means():
    m = random_rbm(6, 4, dtype=torch.float64)
    x = (np.random.default_rng(0).random((30, 6)) < 0.5).astype(np.float64)
    out = m.evaluate(x, batch_size=7, seed=0)
    assert out["free_energy"] == pytest.approx(m.free_energy(torch.from_numpy(x)).mean().item(), rel=1e-12)
    assert set(out) == {"loss", "pll", "free_energy"}


def test_verbose_auto_prints_one_line_per_epoch_without_nan_keys(capsys):
    """Not a terminal (pytest captures stderr): 'auto' gives verbose 2, and keys without a value are left out."""
    from natural_bm.callbacks import LambdaCallback

    x = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(np.float32)
    m = RBM(6, 3, seed=0).compile("sgd", "cd")
    nan_key = LambdaCallback(on_epoch_end=lambda e, logs: logs.update(logZ=float("nan") if e == 0 else 1.5))
    nan_key.produces_logs = True
    m.fit(x, batch_size=10, epochs=2, callbacks=[nan_key], seed=0)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 0 (1/2)", "Epoch 1 (2/2)"]
    assert "logZ" not in lines[0] and "logZ: 1.5000" in lines[1] and "nan" not in captured.out
    assert "batch/s" not in captured.err and "it/s" not in captured.err  # no progress bar text
    with pytest.raises(ValueError, match="'auto'"):
        m.fit(x, epochs=1, verbose=3)


def test_batch_loss_stays_on_the_device_unless_a_callback_wants_floats(monkeypatch):
    """fit keeps each batch's loss a device tensor; CallbackList reads it (a host round-trip, which on a
    GPU waits for the step) only for callbacks that handle batch ends and want floats. The epoch loss
    is the same float64 size-weighted mean as summing the floats."""
    import natural_bm.callbacks.callback_list as callback_list
    from natural_bm.callbacks import Callback, LambdaCallback, TerminateOnNaN

    reads = []
    to_host = callback_list._logs_to_host

    def counting(args):
        reads.append(args[0])
        return to_host(args)

    monkeypatch.setattr(callback_list, "_logs_to_host", counting)

    class Seen(Callback):
        def __init__(self, on_device):
            super().__init__()
            self.batch_logs_on_device = on_device
            self.losses, self.sizes, self.epoch_losses = [], [], []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(logs["loss"])
            self.sizes.append(logs["size"])

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_losses.append(logs["loss"])

    x = (np.random.default_rng(0).random((70, 6)) < 0.4).astype(np.float32)

    def run(*callbacks, verbose=0):
        reads.clear()
        RBM(6, 4, seed=0).compile("sgd", "cd").fit(x, batch_size=20, epochs=2, verbose=verbose, seed=1,
                                                  callbacks=list(callbacks))
        return len(reads)

    device = Seen(True)
    assert run(device) == 0 and run(verbose=2) == 0  # BaseLogger, History, ProgbarLogger: no read per batch
    assert all(isinstance(v, torch.Tensor) and v.device == torch.device("cpu") for v in device.losses)
    plain, lam = Seen(False), []
    assert run(TerminateOnNaN()) == 8  # 4 batches x 2 epochs: TerminateOnNaN checks every batch
    assert run(plain, LambdaCallback(on_batch_end=lambda b, logs: lam.append(logs["loss"]))) == 8
    assert all(type(v) is float for v in plain.losses + lam) and plain.losses == lam
    assert run(LambdaCallback(on_epoch_end=lambda e, logs: None)) == 0  # no batch hook: nothing read
    for e in range(2):  # BaseLogger's epoch mean, summed on the device, equals the float sum's
        losses, sizes = plain.losses[4 * e: 4 * e + 4], plain.sizes[4 * e: 4 * e + 4]
        total = 0.0
        for v, n in zip(losses, sizes, strict=True):
            total += v * n
        assert plain.epoch_losses[e] == total / sum(sizes)
