"""
Classification with a label layer
=================================

Give a Boltzmann machine a layer of softmax units for the class, joined to the
hidden layer beside the pixels, and it models images and labels jointly:
Larochelle & Bengio's classification RBM. Training clamps each image's label
in the positive phase; afterwards p(y | v) is exact, because the hidden layer
sums out in closed form for each of the 10 labels.

You will learn how to

* build ``DBM([64, 100, 10], units=["bernoulli", "bernoulli", "softmax"])``
  and train it with ``fit(x, y=labels, validation_data=(x_val, y_val))``,
  which logs ``val_accuracy`` every epoch;
* classify with ``predict_log_proba`` (exact log p(y | v), nats) and
  ``predict``;
* draw digits of a chosen class by clamping the label layer in
  :class:`natural_bm.sampling.GibbsSampler`.
"""

# %%
# Training with labels
# --------------------
# scikit-learn's 8x8 digits as grey levels, binarised afresh for every
# minibatch. The model is generative: it spends most of its capacity on the 64
# pixels, and learns the labels along the way.

import matplotlib.pyplot as plt
import numpy as np
import torch

from natural_bm import DBM, SGD
from natural_bm.datasets import load_digits
from natural_bm.sampling import GibbsSampler
from natural_bm.viz import image_grid

digits = load_digits("probability")

model = DBM([64, 100, 10], units=["bernoulli", "bernoulli", "softmax"], seed=0).init_from_data(digits.train)
model.compile(SGD(lr=0.05, momentum=0.5), "mfpcd", k=1, n_chains=100, mf_steps=10)
history = model.fit(digits.train, y=digits.train_labels, validation_data=(digits.valid, digits.valid_labels),
                    batch_size=20, epochs=30, binarize=True, verbose=0, seed=0)
print(f"validation accuracy: {history.history['val_accuracy'][0]:.1%} after the first epoch, "
      f"{history.history['val_accuracy'][-1]:.1%} after the last")

# %%
# Exact class probabilities
# -------------------------
# ``predict_log_proba`` returns log p(y | v) for every class, (n, 10) nats;
# ``predict`` is its arg-max. We also report the mean log-probability of the
# true class, which rewards confident right answers and punishes confident
# wrong ones.

log_proba = model.predict_log_proba(torch.as_tensor(digits.test)).numpy()
predicted = log_proba.argmax(1)
accuracy = float(np.mean(predicted == digits.test_labels))
true_class_log_proba = float(log_proba[np.arange(len(predicted)), digits.test_labels].mean())
print(f"test accuracy {accuracy:.1%} on {len(predicted)} images; mean log p(true class | v) = "
      f"{true_class_log_proba:.3f} nats (chance: {np.log(0.1):.3f})")

confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (digits.test_labels, predicted), 1)

# %%
# Digits of a chosen class
# ------------------------
# Clamp the label layer (layer 2) to one one-hot row per chain, and the chains
# sample p(v, h | y). Ten chains, one per class, start at the pixel means and
# run 1,000 sweeps; we keep E[v | h] every 200 sweeps.

labels = torch.eye(10)
sampler = GibbsSampler(model, clamp={2: labels})
generator = torch.Generator().manual_seed(0)
pixel_means = torch.as_tensor(digits.train.mean(0)).expand(10, 64)
chains = sampler.init_chains(torch.bernoulli(pixel_means, generator=generator), generator)
snapshots = []
for _ in range(5):
    means, chains = sampler.snapshot(chains, 200, generator)
    snapshots.append(means)
samples = image_grid(torch.stack(snapshots, 1).reshape(-1, 64), (8, 8), n_cols=len(snapshots))

# %%
# The figure
# ----------
# Left: validation accuracy along training. Middle: the test set's confusion
# matrix (rows: true class, columns: predicted). Right: class-conditional
# samples, one class per row (0 at the top), one column every 200 sweeps.

fig, (ax_acc, ax_conf, ax_img) = plt.subplots(1, 3, figsize=(13, 4.8), width_ratios=[1.1, 1, 0.6],
                                              layout="constrained")
ax_acc.plot(history.epoch, history.history["val_accuracy"], "o-", ms=3)
ax_acc.axhline(0.1, color="k", ls=":", label="chance")
ax_acc.set_xlabel("epoch")
ax_acc.set_ylabel("validation accuracy")
ax_acc.set_ylim(0, 1)
ax_acc.set_title("accuracy of the exact p(y | v)")
ax_acc.legend(loc="lower right")

ax_conf.imshow(confusion, cmap="Blues")
for (i, j), count in np.ndenumerate(confusion):
    if count:
        ax_conf.text(j, i, str(count), ha="center", va="center", fontsize=7,
                     color="white" if count > confusion.max() / 2 else "black")
ax_conf.set_xticks(range(10))
ax_conf.set_yticks(range(10))
ax_conf.set_xlabel("predicted class")
ax_conf.set_ylabel("true class")
ax_conf.set_title(f"test set: {accuracy:.1%} correct")

ax_img.imshow(samples, cmap="gray", interpolation="nearest")
ax_img.set_title("samples given the label")
ax_img.set_xticks([])
ax_img.set_yticks(np.arange(10) * 9 + 4.5)  # tile centres: 8 pixels + 1 of padding
ax_img.set_yticklabels(range(10))
plt.show()
