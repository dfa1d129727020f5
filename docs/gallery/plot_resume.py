"""
Resuming a run
==============

A long run gets interrupted: a job limit, a crash, a machine that is needed
for something else. natural_bm resumes **bit-identically**: ``model.save``
writes the weights and the training state (the optimiser's momentum, the
persistent chains, the run's seed), ``natural_bm.load_model`` gives both back,
and ``fit(..., initial_epoch=e, seed=s)`` continues with the random numbers
the uninterrupted run would have drawn in epoch e, because every epoch's
stream is derived from (seed, epoch).

You will learn how to

* save mid-run and resume from the file;
* check that the resumed run's weights *equal* the uninterrupted run's;
* see why the training state matters: a restart from the weights alone
  (``save(..., include_optimizer=False)``) is another run.
"""

# %%
# Three runs of the same recipe
# -----------------------------
# PCD-1 with momentum on binarised 8x8 digits for 20 epochs, seed 0:
#
# 1. uninterrupted;
# 2. stopped after 8 epochs, saved, loaded, and resumed to 20;
# 3. the same, but saved without the training state and compiled afresh
#    (new momentum, new persistent chains).
#
# A small callback keeps a copy of the weights after every epoch, so that the
# runs can be compared epoch by epoch.

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from natural_bm import RBM, SGD, load_model
from natural_bm.callbacks import LambdaCallback
from natural_bm.datasets import load_digits

digits = load_digits("sampled")
EPOCHS, STOP, SEED = 20, 8, 0


def new_model():
    rbm = RBM(64, 32, seed=0).init_from_data(digits.train)
    return rbm.compile(SGD(lr=0.05, momentum=0.9), "pcd", k=1, n_chains=50)


def train(model, first_epoch, last_epoch, weights):
    """fit from ``first_epoch`` to ``last_epoch`` (exclusive), appending W after each epoch to ``weights``."""
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: weights.append(model.W.detach().clone()))
    return model.fit(digits.train, batch_size=20, epochs=last_epoch, initial_epoch=first_epoch, verbose=0,
                     seed=SEED, callbacks=[keep])


# 1. uninterrupted
full_weights = []
full = new_model()
full_history = train(full, 0, EPOCHS, full_weights)

folder = Path(tempfile.mkdtemp())

# 2. interrupted after STOP epochs, saved with the training state, resumed
resumed_weights = []
first_half = new_model()
first_history = train(first_half, 0, STOP, resumed_weights)
first_half.save(folder / "rbm.pt")
resumed = load_model(folder / "rbm.pt")
second_history = train(resumed, STOP, EPOCHS, resumed_weights)

# 3. interrupted, saved without the training state, compiled afresh
restarted_weights = list(resumed_weights[:STOP])
first_half.save(folder / "weights_only.pt", include_optimizer=False)
restarted = load_model(folder / "weights_only.pt")
restarted.compile(SGD(lr=0.05, momentum=0.9), "pcd", k=1, n_chains=50)
train(restarted, STOP, EPOCHS, restarted_weights)
shutil.rmtree(folder)

# %%
# Are they the same run?
# ----------------------
# Compare every parameter of the final models, and the weights after every
# epoch.

for name in ("W", "vbias", "hbias"):
    same = bool((getattr(full, name) == getattr(resumed, name)).all())
    print(f"{name}: resumed equals uninterrupted: {same}; "
          f"largest difference {float((getattr(full, name) - getattr(resumed, name)).abs().max()):.1e}")
print(f"restarted from the weights alone, largest difference in W: "
      f"{float((full.W - restarted.W).abs().max()):.3f}")

resumed_gap = [float((a - b).abs().max()) for a, b in zip(full_weights, resumed_weights, strict=True)]
restarted_gap = [float((a - b).abs().max()) for a, b in zip(full_weights, restarted_weights, strict=True)]

# %%
# The figure
# ----------
# Left: the pseudo-log-likelihood logged by ``fit`` after every epoch; the
# resumed run's two segments lie on the uninterrupted curve. Right: the
# largest difference between each run's weights and the uninterrupted run's
# after every epoch: zero throughout for the resumed run, growing from the
# restart for the run that lost its momentum and chains.

epochs = np.arange(EPOCHS)
fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
ax.plot(full_history.epoch, full_history.history["pll"], color="C0", lw=3, alpha=0.4, label="uninterrupted")
ax.plot(first_history.epoch, first_history.history["pll"], "o", color="C1", ms=4,
        label=f"epochs 0-{STOP - 1}, then saved")
ax.plot(second_history.epoch, second_history.history["pll"], "s", color="C2", ms=4, label="resumed from the file")
ax.axvline(STOP - 0.5, color="k", ls=":", lw=1)
ax.set_xlabel("epoch")
ax.set_ylabel("pseudo-log-likelihood, stochastic (nats per image)")
ax.set_title("training curve")
ax.legend(loc="lower right")

ax_gap.plot(epochs, resumed_gap, "s-", color="C2", label="resumed with the training state")
ax_gap.plot(epochs, restarted_gap, "^-", color="C3", label="restarted from the weights alone")
ax_gap.axvline(STOP - 0.5, color="k", ls=":", lw=1, label="interruption")
ax_gap.set_xlabel("epoch")
ax_gap.set_ylabel("largest |W - W uninterrupted|")
ax_gap.set_title("distance from the uninterrupted run")
ax_gap.legend(loc="upper left")
for a in (ax, ax_gap):
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
plt.show()
