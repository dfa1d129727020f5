"""Shared by the trajectory AIS tests: a small multimodal data set, and a run killed and resumed."""

from __future__ import annotations

import numpy as np

from natural_bm.callbacks import PeriodicSave, load_training_state


def prototype_data(n_visible: int = 12, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Noisy copies of 4 random binary prototypes: a multimodal data set a small model learns in a few epochs.
    (n, n_visible) float32 in {0, 1}."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((4, n_visible)) < 0.5).astype(np.float32)
    x = protos[rng.integers(0, 4, n)]
    return np.where(rng.random(x.shape) < 0.05, 1 - x, x).astype(np.float32)


def whole_and_resumed(make, callback, x, epochs: int, tmp_path):
    """The same run twice: whole, and killed after epoch 1 then resumed from its checkpoint (weights and
    training state by ``PeriodicSave``). ``make()`` gives a compiled model, ``callback()`` a fresh callback.
    Returns ``(history_whole, callback_whole, history_resumed, callback_resumed)``: the resumed history
    holds epochs 2 to ``epochs - 1``."""
    fit = {"batch_size": 40, "verbose": 0, "seed": 7, "validation_data": x[:100]}
    whole_cb = callback()
    h_whole = make().fit(x, epochs=epochs, callbacks=[whole_cb], **fit).history
    make().fit(x, epochs=2, callbacks=[callback(), PeriodicSave(tmp_path / "w.pt", opt_path=tmp_path / "s.pt")],
               **fit)
    resumed, resumed_cb = make(), callback()
    resumed.load_weights(tmp_path / "w_epoch0001.pt")
    load_training_state(resumed, tmp_path / "s_epoch0001.pt", [resumed_cb, PeriodicSave(tmp_path / "w2.pt")])
    h = resumed.fit(x, epochs=epochs, initial_epoch=2, callbacks=[resumed_cb, PeriodicSave(tmp_path / "w2.pt")],
                    **fit).history
    return h_whole, whole_cb, h, resumed_cb
