"""Keras-family callbacks and layer-wise schedules, driven by controlled logs."""

import json
import math
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import torch

from natural_bm import DBM, RBM, SGD
from natural_bm.callbacks import (
    AdaptiveLayerwise,
    Callback,
    CyclicLR,
    DeadUnitDetector,
    EarlyStopping,
    ExactLikelihoodCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
    RemoteMonitor,
    ScheduledLayerwise,
    SimpleLayerwise,
    SnapshotCallbackBuilder,
    SnapshotModelCheckpoint,
    TensorBoard,
    gen_schedule,
)
from natural_bm.datasets import bars_and_stripes

X = bars_and_stripes(100, 3, seed=0)


class Feed(Callback):
    """Writes known values into the epoch logs (runs before the callback under test)."""

    produces_logs = True

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = float(self.values[epoch])


def _model():
    return RBM(9, 4, seed=0).compile(SGD(0.1), "cd")


def _fit(m, callbacks, epochs, **kw):
    return m.fit(X, batch_size=50, epochs=epochs, callbacks=callbacks, verbose=0, seed=0, **kw)


def test_model_checkpoint_every_epoch_with_templated_names(tmp_path):
    m = _model()
    cp = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}-{metric:.2f}.pt"), monitor="metric", period=2)
    _fit(m, [Feed("metric", [5, 4, 3, 2, 1]), cp], 5)
    # {epoch} is the 0-based index, as in log.csv and the library's other file names (Keras: 1-based)
    assert [p.name for p in cp.saved] == ["ckpt-01-4.00.pt", "ckpt-03-2.00.pt"]
    assert torch.equal(RBM.load(cp.saved[-1]).W, RBM.load(tmp_path / "ckpt-03-2.00.pt").W)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-01-4.00.pt", "ckpt-03-2.00.pt"]


@pytest.mark.parametrize("key,values,saved_epochs", [
    ("val_loss", [3, 2, 2.5, 1, 1.5], [0, 1, 3]),  # minimised
    ("val_ll", [-90, -95, -80, -85, -70], [0, 2, 4]),  # log-likelihoods maximised by mode='auto'
    ("pll", [-5, -4, -6, -3, -3], [0, 1, 3]),
])
def test_model_checkpoint_save_best_only_auto_mode(tmp_path, key, values, saved_epochs):
    m = _model()
    cp = ModelCheckpoint(str(tmp_path / "best-{epoch}.pt"), monitor=key, save_best_only=True,
                         save_weights_only=True)
    _fit(m, [Feed(key, values), cp], 5)
    assert [p.name for p in cp.saved] == [f"best-{e}.pt" for e in saved_epochs]
    saved = torch.load(cp.saved[0], weights_only=True)
    assert saved["training"] is None  # weights only


def test_model_checkpoint_best_file_holds_best_weights(tmp_path):
    m = _model()
    snapshots = {}
    keep = Feed("val_loss", [3, 1, 2, 4])
    grab = type("Grab", (Callback,), {"on_epoch_end": lambda self, e, logs=None: snapshots.update(
        {e: self.model.W.clone()})})()
    cp = ModelCheckpoint(str(tmp_path / "best.pt"), monitor="val_loss", save_best_only=True)
    _fit(m, [keep, grab, cp], 4)
    assert torch.equal(RBM.load(tmp_path / "best.pt").W, snapshots[1])


def test_early_stopping_patience_min_delta_baseline_and_restore():
    m = _model()
    es = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.1)
    hist = _fit(m, [Feed("val_loss", [5, 4, 3.95, 3.92, 1, 1]), es], 6)
    assert hist.epoch == [0, 1, 2, 3] and es.stopped_epoch == 3
    es = EarlyStopping(monitor="val_ll", patience=0, baseline=-80)  # must beat -80 at once
    hist = _fit(_model(), [Feed("val_ll", [-85, -70, -60]), es], 3)
    assert hist.epoch == [0]
    m = _model()
    weights = {}
    grab = type("Grab", (Callback,), {"on_epoch_end": lambda self, e, logs=None: weights.update(
        {e: self.model.W.clone()})})()
    es = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    _fit(m, [Feed("val_loss", [3, 1, 2, 4, 5]), grab, es], 5)
    assert es.stopped_epoch == 2 and torch.equal(m.W, weights[1])


def _noisy_trend(n, plateau_from=None, noise=3.0):
    """A value rising by 1 per epoch (flat from ``plateau_from``) with +-noise alternating: what val_pll
    looks like when its error is larger than an epoch's improvement."""
    trend = [min(t, plateau_from) if plateau_from is not None else t for t in range(n)]
    return [float(m + noise * (-1) ** t) for t, m in enumerate(trend)]


def test_early_stopping_on_a_noisy_key_and_its_smoothed_mean():
    """Raw values stop at the first unlucky draw; the mean of the last 2 follows the trend, does not judge
    the first epoch alone, and stops once the trend is flat (best and reason by hand)."""
    values = _noisy_trend(10)  # 3, -2, 5, 0, 7, 2, 9, 4, 11, 6
    es = EarlyStopping(monitor="val_pll", patience=1)
    assert _fit(_model(), [Feed("val_pll", values), es], 10).epoch == [0, 1]
    es = EarlyStopping(monitor="val_pll", patience=1, smoothing=2)
    assert _fit(_model(), [Feed("val_pll", values), es], 10).epoch == list(range(10)) and es.best_epoch == 9
    assert es.monitor.best == (11 + 6) / 2
    flat = _noisy_trend(12, plateau_from=5)  # 3, -2, 5, 0, 7, 2, 8, 2, 8, 2, 8, 2
    m = _model()
    es = EarlyStopping(monitor="val_pll", patience=2, smoothing=2)
    assert _fit(m, [Feed("val_pll", flat), es], 12).epoch == list(range(9))
    # means from epoch 1: 0.5, 1.5, 2.5, 3.5, 4.5, 5, 5, 5: best 5 at epoch 6, no gain at 7 and 8
    assert (es.stopped_epoch, es.best_epoch, es.monitor.best) == (8, 6, 5.0)
    assert m.trainer.stop_reason == ("early stopping at epoch 8: the mean of the last 2 val_pll did not improve "
                                     "for 2 epochs (best 5 at epoch 6)")
    with pytest.raises(ValueError, match="smoothing"):
        EarlyStopping(smoothing=0)


def test_early_stopping_smoothing_resumes_as_the_uninterrupted_run():
    values = _noisy_trend(12, plateau_from=5)
    whole = EarlyStopping(monitor="val_pll", patience=2, smoothing=3)
    _fit(_model(), [Feed("val_pll", values), whole], 12)
    first = EarlyStopping(monitor="val_pll", patience=2, smoothing=3)
    m = _model()
    _fit(m, [Feed("val_pll", values), first], 4)
    state = first.state_dict()
    assert state["monitor"]["recent"] == values[1:4]
    resumed = EarlyStopping(monitor="val_pll", patience=2, smoothing=3)
    resumed.set_model(m)
    resumed.on_train_begin()
    resumed.load_state_dict(json.loads(json.dumps(state)))  # plain numbers: any checkpoint format holds them
    for epoch in range(4, 12):
        resumed.on_epoch_end(epoch, {"val_pll": values[epoch]})
        if m.stop_training:
            break
    assert (resumed.stopped_epoch, resumed.best_epoch, resumed.monitor.best) == (
        whole.stopped_epoch, whole.best_epoch, whole.monitor.best) and whole.stopped_epoch > 0
    legacy = {"wait": 0, "stopped_epoch": 0, "best_epoch": None, "best_weights": None, "monitor": {"best": -1.0}}
    resumed.load_state_dict(legacy)  # a checkpoint from before smoothing
    assert resumed.monitor.recent == [] and resumed.monitor.best == -1.0


def test_a_missing_monitored_key_says_which_data_or_callback_adds_it():
    with pytest.warns(RuntimeWarning, match=r"'val_pll' is not in the logs .*validation_data=x_valid.*"
                                            r"data.valid_fraction"):
        _fit(_model(), [EarlyStopping(monitor="val_pll")], 1)
    with pytest.warns(RuntimeWarning, match="'val_ll_exact' is added by ExactLikelihoodCallback"):
        _fit(_model(), [EarlyStopping(monitor="val_ll_exact")], 1, validation_data=X[:20])
    gaussian = RBM(9, 4, units=["gaussian", "bernoulli"], seed=0).compile(SGD(0.01), "cd")
    with pytest.warns(RuntimeWarning, match="real-valued: monitor 'val_loss', or 'val_ll_exact'"):
        _fit(gaussian, [EarlyStopping(monitor="val_pll")], 1, validation_data=X[:20])


def _exact_ll(model, rows):
    """The exact mean log-likelihood of an RBM by enumerating every visible state in numpy."""
    W, b, c = (t.detach().double().numpy() for t in (model.W, model.vbias, model.hbias))
    states = np.array(np.meshgrid(*[[0.0, 1.0]] * W.shape[0])).reshape(W.shape[0], -1).T
    neg_f = lambda v: v @ b + np.logaddexp(0.0, v @ W + c).sum(1)  # noqa: E731
    scores = neg_f(states)
    log_z = np.log(np.exp(scores - scores.max()).sum()) + scores.max()
    return float(neg_f(np.asarray(rows, np.float64)).mean() - log_z), float(log_z)


def test_exact_likelihood_callback_logs_the_enumerated_figures():
    valid = bars_and_stripes(40, 3, seed=1)
    weights = {}
    grab = type("Grab", (Callback,), {"on_epoch_end": lambda self, e, logs=None: weights.update(
        {e: self.model.detached_copy()})})()
    hist = _fit(_model(), [grab, ExactLikelihoodCallback(every=2)], 5, validation_data=valid)
    for epoch in range(5):
        row = {k: hist.history[k][epoch] for k in ("logZ_exact", "train_ll_exact", "val_ll_exact")}
        if epoch in (0, 2):  # every 2nd epoch and the last
            assert all(math.isnan(v) for v in row.values())
            continue
        val_ll, log_z = _exact_ll(weights[epoch], valid)
        assert row["logZ_exact"] == pytest.approx(log_z, abs=1e-9)
        assert row["val_ll_exact"] == pytest.approx(val_ll, abs=1e-5)
        assert row["train_ll_exact"] == pytest.approx(_exact_ll(weights[epoch], X)[0], abs=1e-5)
    with pytest.raises(ValueError, match="33,554,432 states to enumerate.*TrajectoryAISCallback"):
        RBM(30, 25, seed=0).compile(SGD(0.1), "cd").fit(np.zeros((4, 30)), epochs=1, verbose=0,
                                                           callbacks=[ExactLikelihoodCallback()])


def test_early_stopping_on_the_exact_validation_likelihood():
    """val_ll_exact has no sampling noise: with patience 0 the run stops at the first epoch whose exact
    validation log-likelihood does not rise, as the enumeration of each epoch's weights says."""
    valid = bars_and_stripes(40, 3, seed=1)
    weights = {}
    grab = type("Grab", (Callback,), {"on_epoch_end": lambda self, e, logs=None: weights.update(
        {e: self.model.detached_copy()})})()
    m = RBM(9, 4, seed=0).compile(SGD(0.5), "cd")
    es = EarlyStopping(monitor="val_ll_exact", patience=0)
    hist = m.fit(bars_and_stripes(400, 3, seed=2), batch_size=20, epochs=40, validation_data=valid, verbose=0, seed=0,
                 callbacks=[ExactLikelihoodCallback(), grab, es])
    exact = [_exact_ll(weights[e], valid)[0] for e in hist.epoch]
    first_drop = next(e for e in range(1, len(exact)) if exact[e] <= exact[e - 1])
    assert hist.epoch[-1] == first_drop == es.stopped_epoch and 1 < first_drop < 39  # it rose first
    assert hist.history["val_ll_exact"] == pytest.approx(exact, abs=1e-5)


def test_reduce_lr_on_plateau():
    m = _model()
    cb = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1, min_lr=0.02, min_delta=0)
    hist = _fit(m, [Feed("val_loss", [5, 5, 5, 5, 5, 5, 5, 5]), cb], 8)
    # logged lr is the one in force during the epoch. Epoch 0 sets the best; waits at 1, 2 -> 0.05 from
    # epoch 3; the cooldown ends at epoch 3 (decremented first, as in Keras), which counts as a wait;
    # epoch 4 -> 0.025; epoch 5 likewise; epoch 6 -> max(0.0125, min_lr=0.02)
    assert hist.history["lr"] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02]
    assert m.optimizer.lr == 0.02
    m = _model()
    _fit(m, [Feed("val_loss", [5] * 10), ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05)], 10)
    assert m.optimizer.lr == 0.05


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr_matches_formula(mode):
    m = _model()
    cb = CyclicLR(base_lr=0.01, max_lr=0.11, step_size=3, mode=mode, gamma=0.9)
    m.fit(X, batch_size=10, epochs=2, callbacks=[cb], verbose=0, seed=0)  # 20 batches
    expected = []
    for t in range(20):
        cycle = math.floor(1 + t / 6)
        x = abs(t / 3 - 2 * cycle + 1)
        scale = {"triangular": 1, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": 0.9**t}[mode]
        expected.append(0.01 + 0.1 * max(0, 1 - x) * scale)
    np.testing.assert_allclose(cb.history["lr"], expected, rtol=1e-12)


def test_snapshot_ensemble(tmp_path):
    builder = SnapshotCallbackBuilder(nb_epochs=6, nb_snapshots=3, init_lr=0.2)
    np.testing.assert_allclose([builder.cosine_anneal_schedule(t) for t in range(6)],
                               [0.2, 0.1, 0.2, 0.1, 0.2, 0.1], atol=1e-12)
    cbs = builder.get_callbacks(model_prefix=str(tmp_path / "snap"), monitor="val_loss")
    m = _model()
    lrs = []
    spy = type("Spy", (Callback,), {"on_epoch_begin": lambda self, e, logs=None: lrs.append(self.model.optimizer.lr)})()
    _fit(m, [Feed("val_loss", [6, 5, 4, 3, 2, 1]), *cbs, spy], 6)
    np.testing.assert_allclose(lrs, [0.2, 0.1, 0.2, 0.1, 0.2, 0.1], atol=1e-12)
    assert [p.name for p in cbs[2].saved] == ["snap-1.pt", "snap-2.pt", "snap-3.pt"]
    assert torch.equal(RBM.load(tmp_path / "snap-3.pt").W, m.W)
    assert (tmp_path / "snap-Best.pt").is_file()
    with pytest.raises(ValueError):
        SnapshotModelCheckpoint(2, 3)


class _Handler(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], self.headers.get("X-Token"), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.received = []
    _Handler.status = 200
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_remote_monitor_posts_form_and_json(server):
    root = f"http://127.0.0.1:{server.server_address[1]}"
    _fit(_model(), [Feed("val_loss", [2.5, float("nan")]), RemoteMonitor(root=root, headers={"X-Token": "t"})], 2)
    path, ctype, token, body = _Handler.received[0]
    assert path == "/publish/epoch/end/" and ctype == "application/x-www-form-urlencoded" and token == "t"
    sent = json.loads(urllib.parse.parse_qs(body.decode())["data"][0])
    assert sent["epoch"] == 0 and sent["val_loss"] == 2.5 and "loss" in sent
    assert json.loads(urllib.parse.parse_qs(_Handler.received[1][3].decode())["data"][0])["val_loss"] is None
    _Handler.received.clear()
    _fit(_model(), [RemoteMonitor(root=root, path="/p", send_as_json=True)], 1)
    path, ctype, _, body = _Handler.received[0]
    assert path == "/p" and ctype == "application/json" and json.loads(body)["epoch"] == 0


def test_remote_monitor_warns_when_server_fails(server):
    _Handler.status = 500
    root = f"http://127.0.0.1:{server.server_address[1]}"
    with pytest.warns(RuntimeWarning, match="could not reach"):
        hist = _fit(_model(), [RemoteMonitor(root=root)], 2)
    assert hist.epoch == [0, 1]
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.warns(RuntimeWarning, match="could not reach"):
        _fit(_model(), [RemoteMonitor(root=f"http://127.0.0.1:{port}", timeout=1)], 1)


def test_tensorboard_event_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    m = RBM(16, 5, seed=0).compile(SGD(0.1), "cd")
    x = (np.random.default_rng(0).random((60, 16)) < 0.4).astype(np.float32)
    tb = TensorBoard(tmp_path, histogram_freq=1, update_freq=2, write_images=True, sample_steps=2)
    hist = m.fit(x, batch_size=20, epochs=2, validation_data=x[:20], callbacks=[tb], verbose=0, seed=0)
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0, "images": 0}).Reload()
    tags = acc.Tags()
    assert {"loss", "pll", "val_loss", "val_pll", "free_energy_gap", "batch/loss"} <= set(tags["scalars"])
    np.testing.assert_allclose([e.value for e in acc.Scalars("loss")], hist.history["loss"], rtol=1e-6)
    assert [e.step for e in acc.Scalars("batch/loss")] == [2, 4, 6]
    assert set(tags["histograms"]) == {"W", "vbias", "hbias"}
    w_hist = acc.Histograms("W")[-1].histogram_value
    assert w_hist.num == 16 * 5 and w_hist.sum == pytest.approx(float(m.W.sum()), rel=1e-5)
    assert set(tags["images"]) == {"filters", "samples"}
    img = acc.Images("filters")[-1]
    assert (img.width, img.height) == (3 * 5 + 1, 2 * 5 + 1)


def test_dead_unit_detector_reports_the_right_units():
    m = RBM(9, 6, seed=0).compile(SGD(0.0), "cd")  # lr 0: weights stay as set
    with torch.no_grad():
        m.W.zero_()
        m.hbias.copy_(torch.tensor([-10.0, 0.0, 10.0, -9.0, 0.5, 0.0]))
    det = DeadUnitDetector(X)
    with pytest.warns(RuntimeWarning, match="2 of 6 hidden units are dead"):
        hist = _fit(m, [det], 1)
    assert det.dead == [0, 3] and det.saturated == [2]
    assert hist.history["dead_units"] == [2.0] and hist.history["saturated_units"] == [1.0]
    with pytest.warns(RuntimeWarning, match="saturated"):
        _fit(m, [DeadUnitDetector(X, verbose=True)], 1)


def test_gen_schedule_and_scheduled_layerwise_freezes_layers():
    assert gen_schedule(3, start=2, duration=2, intermission=1) == [(2, 4), (5, 7), (8, 10)]
    x = (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.float32)
    d = DBM([6, 4, 3], seed=0).compile(SGD(0.1), "mfpcd", n_chains=10, k=1, mf_steps=2)
    sched = ScheduledLayerwise(start=1, duration=2, intermission=0)
    before, changed = {}, {}

    class Watch(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            before.update({k: v.clone() for k, v in self.model.parameter_dict().items()})

        def on_epoch_end(self, epoch, logs=None):
            changed[epoch] = {k for k, v in self.model.parameter_dict().items() if not torch.equal(v, before[k])}

    d.fit(x, batch_size=20, epochs=6, callbacks=[sched, Watch()], verbose=0, seed=0)
    everything = set(d.param_names)
    assert sched.log == [(0, None), (1, 0), (2, 0), (3, 1), (4, 1), (5, None)]
    assert changed[0] == everything and changed[5] == everything
    assert changed[1] == changed[2] == {"b_0", "W_0_1", "b_1"}
    assert changed[3] == changed[4] == {"W_1_2", "b_2"}
    assert [(g["frozen"], g["lr_factor"]) for g in d.optimizer.param_groups] == [(False, 1.0)] * 5  # restored


def test_layerwise_lr_factor_and_all_together():
    x = (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.float32)

    def run(cb):
        d = DBM([6, 4, 3], seed=0).compile(SGD(0.1), "mfpcd", n_chains=10, k=1, mf_steps=2)
        w0 = d.W_0_1.clone()
        d.fit(x, batch_size=40, epochs=1, callbacks=[cb] if cb else None, verbose=0, seed=0)
        return d.W_0_1 - w0

    base = run(None)
    scaled = run(ScheduledLayerwise(schedule=[(0, 1)], bottom_up=False, lr_factor=3.0))
    torch.testing.assert_close(scaled, 3 * base)


def test_simple_layerwise_by_batches_and_rbm_single_layer():
    m = _model()
    cb = SimpleLayerwise(start_epoch=1, steps=2, epochs=False)
    m.fit(X, batch_size=25, epochs=1, callbacks=[cb], verbose=0, seed=0)
    assert cb.log == [(0, None), (1, 0), (2, 0), (3, None)]
    with pytest.raises(ValueError, match="layers"):
        _fit(_model(), [ScheduledLayerwise(schedule=[(0, 1), (1, 2)])], 1)


def test_adaptive_layerwise_moves_on_when_loss_stalls():
    d = DBM([9, 4, 3], seed=0).compile(SGD(0.0), "mfpcd", n_chains=10, k=1, mf_steps=2)
    cb = AdaptiveLayerwise(min_init_epochs=2, patience=1, sig_increase=0.5, sig_decrease=0.1, monitor="metric")
    # epochs: 0,1 init (layer 0 starts after epoch 1); 2: big drop (keeps layer 0); 3: stall -> layer 1;
    # 4: huge rise (instability: hold); 5: stall -> all layers
    d.fit(X, batch_size=50, epochs=7, callbacks=[Feed("metric", [10, 9, 5, 4.9, 9, 4.9, 4.9]), cb], verbose=0,
          seed=0)
    assert cb.log == [(0, None), (1, None), (2, 0), (3, 0), (4, 1), (5, 1), (6, None)]
