"""
Sample grids and filters of an RBM
==================================

Train a small restricted Boltzmann machine on a few thousand MNIST digits,
then look at it the two usual ways: its **filters** (the weights into each
hidden unit, drawn as an image) and **samples** from its Gibbs chains.

You will learn how to

* train an RBM with persistent contrastive divergence on grey levels binarised
  afresh for every minibatch (``fit(..., binarize=True)``);
* tile receptive fields with :func:`natural_bm.viz.plot_filters`;
* run block Gibbs chains with :class:`natural_bm.sampling.GibbsSampler` and tile
  snapshots of them with :func:`natural_bm.viz.image_grid`.
"""

# %%
# Data and model
# --------------
# 10,000 training images as grey levels in [0, 1]. With ``binarize=True`` every
# minibatch is drawn as binary pixels v ~ Bernoulli(grey level), as in
# Salakhutdinov's code. The visible biases start at the log-odds of the pixel
# means (``init_from_data``).

import matplotlib.pyplot as plt
import numpy as np
import torch

from natural_bm import RBM, SGD
from natural_bm.datasets import load_mnist
from natural_bm.sampling import GibbsSampler
from natural_bm.viz import image_grid, plot_filters

data = load_mnist("probability", n_train=10_000, n_valid=1_000)

rbm = RBM(784, 100, seed=0).init_from_data(data.train)
rbm.compile(SGD(lr=0.005, momentum=0.5), "pcd", k=1, n_chains=100, l2=1e-4)
history = rbm.fit(data.train, batch_size=50, epochs=15, binarize=True, verbose=0, seed=0)
print(f"pseudo-log-likelihood after {len(history.epoch)} epochs: {history.history['pll'][-1]:.2f} nats per image")

# %%
# Filters
# -------
# Each tile is one column of ``W`` (784 weights into one hidden unit), rescaled
# to [0, 1] on its own: white pixels excite the unit, black ones inhibit it.
# ``plot_filters`` returns the grid as an 8-bit image (and can write a PNG).

filters = plot_filters(rbm, (28, 28), n_filters=100, n_cols=10, scale=1)

# %%
# Samples
# -------
# Ten chains start at test digits and run 2,000 block-Gibbs sweeps. Every 200
# sweeps we keep E[v | h], which draws smoother digits than the binary sample.
# ``snapshot`` returns those means and the advanced chains. A model trained by
# PCD with a small learning rate mixes: its chains wander from one digit class
# to another instead of staying near their starting image.

generator = torch.Generator().manual_seed(0)
sampler = GibbsSampler(rbm)
start = torch.as_tensor(data.test[:10])
chains = sampler.init_chains(torch.bernoulli(start, generator=generator), generator)
snapshots = [start]
for _ in range(10):
    means, chains = sampler.snapshot(chains, 200, generator)
    snapshots.append(means)

# one row per chain, one column per snapshot (tiles are laid out row by row)
tiles = torch.stack(snapshots, 1).reshape(-1, 784)
samples = image_grid(tiles, (28, 28), n_cols=len(snapshots))

# %%
# The figure
# ----------

fig, axes = plt.subplots(1, 2, figsize=(11, 5.8), width_ratios=[1, 1.1], layout="constrained")
axes[0].imshow(filters, cmap="gray", interpolation="nearest")
axes[0].set_title("100 filters (columns of W)")
axes[1].imshow(samples, cmap="gray", interpolation="nearest")
axes[1].set_title("10 chains: start (left), then every 200 Gibbs sweeps")
axes[1].set_xticks(np.arange(len(snapshots)) * 29 + 14.5)  # tile centres: 28 pixels + 1 of padding
axes[1].set_xticklabels([str(200 * i) for i in range(len(snapshots))], fontsize=8)
axes[1].set_xlabel("Gibbs sweeps")
axes[1].set_yticks([])
axes[0].set_axis_off()
plt.show()
