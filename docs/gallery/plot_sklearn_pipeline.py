"""
RBM features in a scikit-learn Pipeline
=======================================

:class:`natural_bm.sklearn.RBMTransformer` is an RBM with scikit-learn's
estimator interface (``fit``, ``transform``, ``score_samples``,
``components_``), the same parameters as scikit-learn's ``BernoulliRBM``, and
natural_bm's training underneath. Its features, p(h = 1 | v), feed any
scikit-learn classifier.

You will learn how to

* chain ``RBMTransformer`` and ``LogisticRegression`` in a ``Pipeline``;
* compare it with logistic regression on the raw pixels;
* read the fitted weights (``components_``) of the step inside the pipeline.

The same comparison on more of MNIST is one of the shipped experiments
(``experiments/mnist_features``).
"""

# %%
# Data
# ----
# 5,000 MNIST training images and the first 2,000 test images, as grey levels
# in [0, 1] (the RBM's visible units are binary, and it treats grey levels as
# their probabilities).

import matplotlib.pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from natural_bm.datasets import load_mnist
from natural_bm.sklearn import RBMTransformer
from natural_bm.viz import image_grid

mnist = load_mnist("probability", n_train=5_000, n_valid=0)
x_train, y_train = mnist.train, mnist.train_labels
x_test, y_test = mnist.test[:2_000], mnist.test_labels[:2_000]

# %%
# Two classifiers
# ---------------
# The pipeline fits the RBM (256 hidden units, 10 epochs of PCD-1 with
# minibatches of 20 and momentum 0.5), then the logistic regression on its
# features. The baseline fits the same logistic regression (C = 1) to the
# pixels.

pipeline = Pipeline([
    ("rbm", RBMTransformer(n_components=256, learning_rate=0.05, momentum=0.5, n_iter=10, batch_size=20,
                           random_state=0)),
    ("logistic", LogisticRegression(C=1.0, max_iter=1000)),
])
pipeline.fit(x_train, y_train)
raw = LogisticRegression(C=1.0, max_iter=1000).fit(x_train, y_train)

scores = {"logistic regression\non raw pixels": raw.score(x_test, y_test),
          "RBM features (256)\n+ logistic regression": pipeline.score(x_test, y_test)}
for name, score in scores.items():
    print(f"{name.replace(chr(10), ' ')}: test accuracy {score:.1%}")

rbm = pipeline.named_steps["rbm"]
print(f"mean pseudo-log-likelihood of the test images: {rbm.score_samples(x_test).mean():.2f} nats")

# %%
# The figure
# ----------
# Left: test accuracy (2,000 images) of the two classifiers. Right: the
# first 100 of the RBM's filters, the rows of ``components_``, each rescaled
# to [0, 1].

filters = image_grid(rbm.components_[:100], (28, 28), n_cols=10, normalize=True)

fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(10, 4.8), layout="constrained")
bars = ax.bar(list(scores), list(scores.values()), color=["C7", "C0"])
ax.bar_label(bars, labels=[f"{s:.1%}" for s in scores.values()])
ax.set_ylim(0, 1.05)
ax.set_ylabel("test accuracy")
ax.set_title("MNIST: 5,000 training images, 2,000 test images")

ax_img.imshow(filters, cmap="gray", interpolation="nearest")
ax_img.set_title("RBMTransformer.components_ (100 of 256)")
ax_img.set_axis_off()
plt.show()
