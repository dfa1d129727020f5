"""
A Gaussian-Bernoulli RBM on standardised digits
===============================================

Real-valued data need real-valued visible units. A Gaussian-Bernoulli RBM has
Gaussian visible units (here with a fixed standard deviation of 1) and binary
hidden units, so it is a mixture of 2^n_hidden Gaussians that share one
covariance. With 16 hidden units its log partition function is still exact:
the hidden states are enumerated and the Gaussian visible layer integrated out
in closed form.

You will learn how to

* build an RBM with ``units=["gaussian", "bernoulli"]`` and train it on
  standardised data (every pixel minus its mean, divided by its standard
  deviation);
* measure its exact test log-likelihood, a *density* in nats, against the
  baseline of independent Gaussians, and check AIS on it;
* draw samples and map them back to grey levels.
"""

# %%
# Data and the baseline
# ---------------------
# scikit-learn's 8x8 digits, standardised with the training set's means and
# standard deviations (``load_digits("standardized")``). The baseline models
# every pixel as an independent N(training mean, 1): the same variance as the
# RBM's visible units, and no hidden units.

import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import LambdaCallback
from natural_bm.datasets import load_digits
from natural_bm.estimators import AIS, EngineOptions, log_likelihood, log_partition_exact
from natural_bm.sampling import GibbsSampler
from natural_bm.viz import image_grid

digits = load_digits("standardized")
mean = digits.train.mean(0)
baseline = float((-0.5 * (digits.test - mean) ** 2 - 0.5 * np.log(2 * np.pi)).sum(1).mean())
print(f"independent N(mean, 1) per pixel: test log-likelihood {baseline:.2f} nats per image")

# %%
# Training, with the exact log-likelihood after every epoch
# ---------------------------------------------------------
# CD-1, momentum 0.5, 60 epochs. The visible biases start at the data means
# (``init_from_data``; for Gaussian units with sigma = 1 the bias is the mean).

rbm = RBM(64, 16, seed=0, units=["gaussian", "bernoulli"]).init_from_data(digits.train)
rbm.compile(SGD(lr=0.005, momentum=0.5), "cd", k=1)


def measure(epoch, logs):
    logs["test_ll"], logs["test_se"] = log_likelihood(rbm, digits.test, log_partition_exact(rbm, progress=False))


history = rbm.fit(digits.train, batch_size=20, epochs=60, verbose=0, seed=0,
                  callbacks=[LambdaCallback(on_epoch_end=measure)])
test_ll, test_se = history.history["test_ll"][-1], history.history["test_se"][-1]
print(f"GB-RBM 64-16 after 60 epochs: exact test log-likelihood {test_ll:.2f} ± {test_se:.2f} nats per image")

# %%
# The standard error above is large because images differ a lot in how
# probable they are. The gain over the baseline is measured on the same
# images, so its standard error comes from the per-image differences:
# log p(v) = -F(v) - log Z for the RBM, minus the baseline's log-density.

log_z_exact = log_partition_exact(rbm, progress=False)
with torch.no_grad():
    rbm_per_image = (-rbm.free_energy(torch.as_tensor(digits.test)).double() - log_z_exact).numpy()
baseline_per_image = (-0.5 * (digits.test - mean) ** 2 - 0.5 * np.log(2 * np.pi)).sum(1)
gain = rbm_per_image - baseline_per_image
print(f"gain over the baseline: {gain.mean():.2f} ± {gain.std(ddof=1) / np.sqrt(len(gain)):.2f} nats per image "
      f"(higher for {np.mean(gain > 0):.0%} of the test images)")

# %%
# AIS on a Gaussian model
# -----------------------
# AIS anneals the Gaussian visible layer from independent Gaussians with the
# data means (the data base model) to the RBM. With the exact value at hand we
# can check it.

ais = AIS(rbm, data=digits.train, n_runs=100, n_betas=3000, seed=0, progress=False,
          engine=EngineOptions(jit_compile=False))  # eager steps: no compilation for so small a model
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    log_z, lo, hi = ais.estimate_log_error_Z()
print(f"log Z: exact {log_z_exact:.3f}, forward AIS (3,000 betas) {log_z:.3f} [{lo:.3f}, {hi:.3f}], "
      f"{ais.ess:.0f} effective runs of 100")

# %%
# Samples
# -------
# Eight chains start at test digits. Every 100 sweeps we keep the mean of the
# visible units given the hidden ones, and undo the standardisation with the
# training set's grey-level means and standard deviations (``"probability"``
# has the same split).

grey = load_digits("probability")
grey_mean, grey_std = grey.train.mean(0), grey.train.std(0)

generator = torch.Generator().manual_seed(0)
sampler = GibbsSampler(rbm)
chains = sampler.init_chains(torch.as_tensor(digits.test[:8]), generator)
snapshots = [torch.as_tensor(digits.test[:8])]
for _ in range(8):
    means, chains = sampler.snapshot(chains, 100, generator)
    snapshots.append(means)
standardised = torch.stack(snapshots, 1).reshape(-1, 64).numpy()
pixels = np.clip(standardised * np.where(grey_std > 0, grey_std, 1.0) + grey_mean, 0, 1)
grid = image_grid(pixels, (8, 8), n_cols=len(snapshots), scale=6)

# %%
# The figure
# ----------
# Left: the exact test log-likelihood along training against the baseline.
# The RBM starts at the baseline (zero weights, biases at the means) and gains
# several nats per image; forward AIS's log Z gives the same number (the
# square). Right: samples, one chain per row. They are blurred: 16 hidden
# units make a mixture of 2^16 Gaussians with one shared, spherical covariance,
# a coarse model of digits, though a far better one than independent pixels.

fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(11, 4.8), width_ratios=[1.2, 1], layout="constrained")
epochs = np.array(history.epoch)
values, errors = np.array(history.history["test_ll"]), np.array(history.history["test_se"])
ax.plot(epochs, values, color="C0", label="GB-RBM 64-16, exact log Z")
ax.fill_between(epochs, values - errors, values + errors, color="C0", alpha=0.15,
                label="± 1 standard error over test images")
ax.axhline(baseline, color="k", ls="--", label="independent N(mean, 1) per pixel")
ax.errorbar([epochs[-1]], [test_ll - log_z + log_z_exact], yerr=[[hi - log_z], [log_z - lo]], fmt="s", color="C1",
            capsize=3, label="last epoch with forward AIS's log Z (±3σ)")
ax.set_xlabel("epoch")
ax.set_ylabel("test log-likelihood (nats per image)")
ax.set_title("a density of 64 real values")
ax.legend(loc="center right", fontsize=9)

ax_img.imshow(grid, cmap="gray", interpolation="nearest")
ax_img.set_title("8 chains: start (left), then every 100 sweeps")
ax_img.set_axis_off()
plt.show()
