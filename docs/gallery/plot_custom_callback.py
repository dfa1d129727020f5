"""
Writing a callback
==================

Callbacks are how you watch, steer or stop training without touching the fit
loop. A callback subclasses :class:`natural_bm.callbacks.Callback`, overrides
the hooks it needs (``on_train_begin``, ``on_epoch_end``, ...), and talks to
the loop through ``logs``: whatever it writes into an epoch's ``logs`` dict
lands in the ``History`` that ``fit`` returns (and in ``CSVLogger``'s file).

You will learn how to

* write a callback that measures the model at the end of every epoch and logs
  the numbers under its own keys;
* use ``self.model`` (the model being trained) and ``self.params`` (what
  ``fit`` was asked to do, including the monitored training rows);
* declare ``produces_logs = True`` so that loggers see the new keys;
* plot the logged keys from ``History`` next to the loop's own ``loss``.
"""

# %%
# The callback
# ------------
# It logs three things after every epoch: the exact test log-likelihood
# (the model is small enough to enumerate), how many hidden units are nearly
# dead (on for less than 1% of the monitored training rows) or saturated (on
# for more than 99%), and the largest weight. It keeps nothing between epochs,
# so it needs no ``state_dict``; a callback with counters or best values would
# return them there so that a resumed run carries on where it stopped.

import matplotlib.pyplot as plt
import numpy as np
import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import Callback
from natural_bm.datasets import load_digits
from natural_bm.estimators import log_likelihood, log_partition_exact


class ModelMonitor(Callback):
    """Logs ``test_ll`` (exact, nats per image), ``dead_fraction``, ``saturated_fraction`` and ``max_weight``."""

    produces_logs = True  # run before the loggers, so that CSVLogger and History get these keys

    def __init__(self, x_test):
        super().__init__()
        self.x_test = x_test

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        with torch.no_grad():
            p_on = model.transform(self.params["train_data"]).mean(0)  # p(h = 1 | v), averaged over rows
        logs["test_ll"], _ = log_likelihood(model, self.x_test, log_partition_exact(model, progress=False))
        logs["dead_fraction"] = float((p_on < 0.01).double().mean())
        logs["saturated_fraction"] = float((p_on > 0.99).double().mean())
        logs["max_weight"] = float(model.W.abs().max())


# %%
# Training with it
# ----------------
# An RBM with 16 hidden units on binarised 8x8 digits, trained with a large
# learning rate on purpose, so that there is something to watch.

digits = load_digits("sampled")
rbm = RBM(64, 16, seed=0).init_from_data(digits.train)
rbm.compile(SGD(lr=0.2, momentum=0.9), "cd", k=1)
history = rbm.fit(digits.train, batch_size=20, epochs=40, verbose=0, seed=0,
                  callbacks=[ModelMonitor(digits.test)])

logged = history.history
best = int(np.argmax(logged["test_ll"]))
print(f"keys in the history: {sorted(logged)}")
print(f"best exact test log-likelihood {logged['test_ll'][best]:.3f} nats at epoch {history.epoch[best]}, "
      f"{logged['test_ll'][-1]:.3f} at the last epoch")
print(f"dead hidden units: {logged['dead_fraction'][0]:.0%} after the first epoch, "
      f"{logged['dead_fraction'][-1]:.0%} after the last")

# %%
# The figure
# ----------
# Everything comes from ``history.history``: the loop's reconstruction
# ``loss`` beside the callback's keys. The reconstruction error falls
# smoothly while the exact test log-likelihood jumps from epoch to epoch: the
# reconstruction error is a training signal, not a measure of the model. The
# large learning rate drives most hidden biases down in the first epoch, so
# most units start out dead; they come back as the weights grow.

epochs = history.epoch
fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
axes[0].plot(epochs, logged["loss"], color="C7")
axes[0].set_ylabel("reconstruction cross-entropy (nats per image)")
axes[0].set_title("logged by fit: loss")
axes[1].plot(epochs, logged["test_ll"], color="C0")
axes[1].axvline(epochs[best], color="C0", ls=":", label=f"best, epoch {epochs[best]}")
axes[1].set_ylabel("exact test log-likelihood (nats per image)")
axes[1].set_title("logged by ModelMonitor: test_ll")
axes[1].legend(loc="lower right")
axes[2].plot(epochs, logged["dead_fraction"], color="C3", label="dead (on < 1%)")
axes[2].plot(epochs, logged["saturated_fraction"], color="C1", label="saturated (on > 99%)")
axes[2].set_ylabel("fraction of hidden units")
axes[2].set_ylim(0, 1)
twin = axes[2].twinx()
twin.plot(epochs, logged["max_weight"], color="k", ls="--", label="largest |W|")
twin.set_ylabel("largest |W|")
axes[2].set_title("logged by ModelMonitor: units and weights")
lines = axes[2].get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
axes[2].legend(lines, [line.get_label() for line in lines], loc="center right")
for ax in axes:
    ax.set_xlabel("epoch")
plt.show()
