"""
Exact log Z against AIS as the number of betas grows
====================================================

The log partition function log Z of an RBM with 20 hidden units can be
computed exactly: enumerate the 2^20 hidden states and sum the visible units
out in closed form. That makes it a test bench for annealed importance
sampling (AIS), the estimator every larger model depends on.

You will learn how to

* compute the exact value with :func:`natural_bm.estimators.log_partition_exact`;
* run forward AIS with :class:`natural_bm.estimators.AIS` for schedules of
  different lengths, and read its estimate, its ±3σ band and its effective
  sample size;
* recognise a schedule that is too short: an estimate below the truth, a band
  whose lower end falls to -inf, and few effective runs.
"""

# %%
# A small RBM on MNIST
# --------------------
# 10,000 binarised training digits, 20 hidden units, ten epochs of CD-1. The
# model does not need to be good, only to have an interesting log Z.

import warnings

import matplotlib.pyplot as plt
import numpy as np

from natural_bm import RBM, SGD
from natural_bm.datasets import load_mnist
from natural_bm.estimators import AIS, EngineOptions, log_partition_exact

data = load_mnist("sampled", n_train=10_000, n_valid=1_000)
rbm = RBM(784, 20, seed=0).init_from_data(data.train)
rbm.compile(SGD(lr=0.05, momentum=0.9), "cd", k=1)
rbm.fit(data.train, batch_size=50, epochs=10, verbose=0, seed=0)

log_z_exact = log_partition_exact(rbm, progress=False)
print(f"exact log Z = {log_z_exact:.3f} nats (2^20 hidden states enumerated)")

# %%
# AIS with longer and longer schedules
# ------------------------------------
# ``n_betas`` shortens Salakhutdinov & Murray's schedule (14,501 inverse
# temperatures) while keeping the share of steps in each of its three
# segments. Every run uses 100 annealing runs and the data base model (the
# pixel means). ``estimate_log_error_Z`` returns the estimate and the ends of
# its ±3σ band, σ being the standard error of the importance weights.
#
# ``engine=EngineOptions(jit_compile=False)`` anneals eagerly: for a model
# this small that is quicker than the seconds ``torch.compile`` needs to build
# the compiled step.
#
# AIS warns (``RuntimeWarning``) when fewer than 10 effective runs carry the
# estimate; here we silence the warnings and plot the effective sample size
# instead.

n_betas = [50, 100, 200, 500, 1000, 2000, 5000, 10000]
estimates, lows, highs, ess = [], [], [], []
for n in n_betas:
    ais = AIS(rbm, data=data.train, n_runs=100, n_betas=n, seed=0, progress=False,
              engine=EngineOptions(jit_compile=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        log_z, lo, hi = ais.estimate_log_error_Z()
    estimates.append(log_z)
    lows.append(lo)
    highs.append(hi)
    ess.append(ais.ess)
    print(f"{n:6d} betas: log Z = {log_z:8.3f} [{lo:8.3f}, {hi:8.3f}], "
          f"error {log_z - log_z_exact:+.3f} nats, {ais.ess:5.1f} effective runs of 100")

# %%
# The figure
# ----------
# Left: the estimate (dots) and its ±3σ band (shaded) against the exact value
# (line). Where the band's lower end is -inf (too few effective runs for a
# band), it is drawn to the bottom of the axes with an arrow. Right: the
# effective sample size, with AIS's warning threshold of 10.
#
# With the shortest schedules even the upper end of the band lies below the
# exact value: forward AIS is unbiased for Z, not for log Z, and a short
# schedule leaves a few lucky runs to carry the mean, so the estimate of log Z
# falls low and the band cannot be trusted either. The cure is more betas, and
# the effective sample size tells you when you have enough.

estimates, lows, highs = np.array(estimates), np.array(lows), np.array(highs)
fig, (ax, ax_ess) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
bottom = min(estimates.min(), log_z_exact) - 1.5
ax.fill_between(n_betas, np.maximum(lows, bottom), highs, color="C0", alpha=0.25, label="AIS ±3σ band")
ax.plot(n_betas, estimates, "o-", color="C0", label="forward AIS estimate (100 runs)")
ax.axhline(log_z_exact, color="k", lw=1.2, label=f"exact log Z = {log_z_exact:.2f}")
for n, lo in zip(n_betas, lows, strict=True):
    if not np.isfinite(lo):
        ax.annotate("", xy=(n, bottom), xytext=(n, bottom + 0.6),
                    arrowprops={"arrowstyle": "->", "color": "C3", "ls": ":"})
ax.plot([], [], ls=":", color="C3", label="band's lower end at -inf")  # legend entry for the arrows
ax.set_ylim(bottom, max(highs.max(), log_z_exact) + 0.5)
ax.set_xscale("log")
ax.set_xlabel("number of inverse temperatures (betas)")
ax.set_ylabel("log Z (nats)")
ax.set_title("AIS converges to the exact log Z")
ax.legend(loc="lower right")

ax_ess.plot(n_betas, ess, "o-", color="C2")
ax_ess.axhline(10, color="C3", ls=":", label="AIS warns below 10")
ax_ess.set_xscale("log")
ax_ess.set_ylim(0, 100)
ax_ess.set_xlabel("number of inverse temperatures (betas)")
ax_ess.set_ylabel("effective runs (of 100)")
ax_ess.set_title("effective sample size of the weights")
ax_ess.legend(loc="lower right")
plt.show()
