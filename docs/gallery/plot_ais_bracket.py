"""
A forward/reverse AIS bracket
=============================

Forward AIS anneals from a simple base model to the RBM; its estimate of
log Z is biased *low*, so the log-likelihoods it gives look too good. Reverse
AIS starts from samples of the RBM and anneals back to the base model; its
estimate is biased *high*, so its log-likelihoods are conservative. When the
reverse chains really are samples of the model, the two **bracket** log Z.
When they are not, reverse AIS can fall below forward AIS: the two **cross**,
and then neither number is a bound.

You will learn how to

* run both directions with :meth:`natural_bm.estimators.AIS.estimate_bracket`
  and read its ``gap`` (reverse minus forward, nats);
* turn the bracket into a range for the test log-likelihood;
* recognise a model whose Gibbs chains do not mix, from the bracket alone.

Both models have 20 hidden units, so the exact log Z is known and we can see
which estimate is right.
"""

# %%
# Two small RBMs on MNIST
# -----------------------
# The same architecture trained two ways: PCD-1 with a small learning rate
# (its Gibbs chains mix well) and CD-1 with a large one (CD-1 can leave
# spurious modes that a Gibbs chain started at the data never reaches).

import warnings

import matplotlib.pyplot as plt
import numpy as np

from natural_bm import RBM, SGD
from natural_bm.datasets import load_mnist
from natural_bm.estimators import AIS, EngineOptions, log_partition_exact

data = load_mnist("sampled", n_train=10_000, n_valid=1_000)

mixing = RBM(784, 20, seed=0).init_from_data(data.train)
mixing.compile(SGD(lr=0.005, momentum=0.5), "pcd", k=1, n_chains=100)
mixing.fit(data.train, batch_size=50, epochs=10, verbose=0, seed=0)

sticky = RBM(784, 20, seed=0).init_from_data(data.train)
sticky.compile(SGD(lr=0.05, momentum=0.9), "cd", k=1)
sticky.fit(data.train, batch_size=50, epochs=10, verbose=0, seed=0)

models = {"PCD-1, lr 0.005 (chains mix)": mixing, "CD-1, lr 0.05 (chains stick)": sticky}
exact = {name: log_partition_exact(m, progress=False) for name, m in models.items()}

# %%
# Forward and reverse AIS
# -----------------------
# ``estimate_bracket`` runs forward AIS, then reverse AIS from ``n_runs``
# Gibbs chains started at training rows and run ``n_gibbs`` sweeps (the
# closest we can get to samples of the model without knowing it). With test
# data it also gives the test log-likelihood implied by each estimate.
# We silence AIS's warning about few effective runs and print the counts.

n_betas = [100, 300, 1000, 3000]
results = {name: [] for name in models}
for name, model in models.items():
    for n in n_betas:
        ais = AIS(model, data=data.train, n_runs=100, n_betas=n, seed=0, progress=False,
                  engine=EngineOptions(jit_compile=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bracket = ais.estimate_bracket(data.test, data=data.train, n_gibbs=1000)
        # the ±3σ bands of the two estimates, from the weights the bracket already drew
        bracket["band_forward"] = ais.estimate_log_error_Z()[1:]
        bracket["band_reverse"] = ais.estimate_log_error_Z_reverse()[1:]
        results[name].append(bracket)


def verdict(b):
    """What a forward/reverse pair says about log Z, in words."""
    if b["gap"] >= 0:
        return f"bracket [{b['logZ_forward']:.3f}, {b['logZ_reverse']:.3f}], {b['gap']:.3f} nats wide"
    return f"they cross by {-b['gap']:.2f} nats: neither is a bound"


for name, brackets in results.items():
    b = brackets[-1]
    print(f"{name}: exact log Z {exact[name]:.2f}; with {n_betas[-1]} betas {verdict(b)} "
          f"(effective runs {b['ess_forward']:.0f} forward, {b['ess_reverse']:.0f} reverse)")
    if b["gap"] >= 0:
        print(f"    test log-likelihood between {b['ll_reverse']:.2f} (reverse) and {b['ll_forward']:.2f} "
              f"(forward) ± {b['ll_stderr']:.2f} nats")
    else:
        print(f"    test log-likelihood: forward {b['ll_forward']:.2f}, reverse {b['ll_reverse']:.2f} nats, "
              f"which is no range")

# %%
# The figure
# ----------
# Each panel shows the two estimates' error against the exact value as the
# schedule grows, each with its ±3σ band (an arrow to the edge of the axes
# where an end of the band is infinite: too few effective runs for a band).
# Left: the two estimates close on the truth from both sides; where they cross
# by less than their bands (the shortest schedules), that is noise.
# Right: the forward estimate converges (we can tell only because we know the
# answer), but reverse AIS stays far *below* it: its chains, started at the
# data, never found the model's spurious modes, so they were not samples of
# the model. Without the exact value you get two warnings, and either is
# enough: the estimates cross, and the reverse weights have about three
# effective runs, so the reverse band is open upwards. Report neither number;
# anneal longer, start the reverse chains from the model's own persistent
# chains, or train a model that mixes.

fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
series = (("logZ_forward", "band_forward", "o", "C0", "forward AIS (biased low)", 0.95),
          ("logZ_reverse", "band_reverse", "s", "C1", "reverse AIS (biased high)", 1.05))
for ax, (name, brackets) in zip(axes, results.items(), strict=True):
    z = exact[name]
    values = np.array([[b[key] - z, *(e - z for e in b[band])] for b in brackets for key, band, *_ in series])
    finite = values[np.isfinite(values)]
    margin = 0.1 * (finite.max() - finite.min())
    floor, ceiling = finite.min() - margin, finite.max() + margin
    for key, band, marker, color, label, shift in series:
        x = np.array(n_betas) * shift  # side by side, so that the bands do not hide each other
        y = np.array([b[key] - z for b in brackets])
        lo = np.array([b[band][0] - z for b in brackets])
        hi = np.array([b[band][1] - z for b in brackets])
        # finite band ends as error bars; an infinite end as a dotted arrow to the edge of the axes
        ax.errorbar(x, y, yerr=[np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)],
                    fmt=marker + "-", color=color, capsize=3, label=label + ", ±3σ")
        for xi, yi, li, hi_i in zip(x, y, lo, hi, strict=True):
            for end, edge in ((li, floor), (hi_i, ceiling)):
                if not np.isfinite(end):
                    ax.annotate("", xy=(xi, edge), xytext=(xi, yi),
                                arrowprops={"arrowstyle": "->", "color": color, "ls": ":"})
    ax.plot([], [], ls=":", color="grey", label="band end at ±inf")  # legend entry for the arrows
    ax.axhline(0, color="k", lw=1.2, label=f"exact log Z ({z:.2f} nats)")
    ax.set_ylim(floor, ceiling)
    ax.set_xscale("log")
    ax.set_xlabel("number of inverse temperatures (betas)")
    ax.set_ylabel("estimate minus exact log Z (nats)")
    ax.set_title(f"{name}\n{n_betas[-1]} betas: {verdict(brackets[-1])}", fontsize=10)
    ax.legend(loc="best", fontsize=8)
plt.show()
