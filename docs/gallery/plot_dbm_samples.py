"""
Samples from a deep Boltzmann machine
=====================================

A deep Boltzmann machine (DBM) stacks hidden layers, all of them undirected.
Training one needs two approximations: mean-field inference for the data's
posterior over the hidden layers (the positive phase) and persistent Gibbs
chains for the model's statistics (the negative phase), together "mean-field
PCD". Centring the layers makes a DBM trainable without greedy pre-training.

You will learn how to

* build a :class:`natural_bm.DBM` with two hidden layers and train it with
  ``"mfpcd"`` and ``centering=True``;
* draw samples with :class:`natural_bm.sampling.GibbsSampler`, which runs
  block Gibbs on any layered model (odd layers given even ones, then even
  given odd);
* watch chains started at test digits and at random noise.
"""

# %%
# A 784-200-100 DBM on 10,000 MNIST digits
# ----------------------------------------
# Ten epochs of mean-field PCD: 10 mean-field updates per minibatch for the
# positive phase, 100 persistent chains advanced by 5 Gibbs sweeps per update
# for the negative phase, on minibatches binarised afresh.

import matplotlib.pyplot as plt
import numpy as np
import torch

from natural_bm import DBM, SGD
from natural_bm.datasets import load_mnist
from natural_bm.sampling import GibbsSampler
from natural_bm.viz import image_grid

data = load_mnist("probability", n_train=10_000, n_valid=1_000)

dbm = DBM([784, 200, 100], seed=0).init_from_data(data.train)
dbm.compile(SGD(lr=0.01, momentum=0.5), "mfpcd", k=5, n_chains=100, mf_steps=10, centering=True)
history = dbm.fit(data.train, batch_size=100, epochs=10, binarize=True, verbose=0, seed=0)
print(f"reconstruction loss through the mean-field posterior: {history.history['loss'][0]:.1f} after the "
      f"first epoch, {history.history['loss'][-1]:.1f} nats per image after the last")

# %%
# Gibbs chains
# ------------
# Five chains start at binarised test digits and five at uniform random
# pixels. For a deeper model ``init_chains`` fills the hidden layers
# bottom-up from the visible start. Every 100 sweeps ``snapshot`` returns
# E[v | h1], the mean of the visible layer given the first hidden layer.

generator = torch.Generator().manual_seed(0)
digits = torch.bernoulli(torch.as_tensor(data.test[:5]), generator=generator)
noise = torch.bernoulli(torch.full((5, 784), 0.5), generator=generator)
start = torch.cat([digits, noise])

sampler = GibbsSampler(dbm)
chains = sampler.init_chains(start, generator)
snapshots = [start]
for _ in range(10):
    means, chains = sampler.snapshot(chains, 100, generator)
    snapshots.append(means)
grid = image_grid(torch.stack(snapshots, 1).reshape(-1, 784), (28, 28), n_cols=len(snapshots))

# %%
# The figure
# ----------
# One chain per row: the start on the left, then every 100 sweeps. The chains
# begun in noise turn into digits within the first 100 sweeps, and all of
# them move between digit classes as they run. After only ten epochs on
# 10,000 images the digits are blurred; longer training (and greedy
# pre-training, ``natural_bm.training.pretrain_dbm``) sharpens them.

fig, ax = plt.subplots(figsize=(8, 7.6), layout="constrained")
ax.imshow(grid, cmap="gray", interpolation="nearest")
ax.set_xticks(np.arange(len(snapshots)) * 29 + 14.5)  # tile centres: 28 pixels + 1 of padding
ax.set_xticklabels([str(100 * i) for i in range(len(snapshots))])
ax.set_yticks([5 * 29 / 2, 5 * 29 + 5 * 29 / 2])
ax.set_yticklabels(["from test\ndigits", "from\nnoise"])
ax.set_xlabel("Gibbs sweeps")
ax.set_title("DBM 784-200-100, mean-field PCD, centred: samples E[v | h1]")
plt.show()
