"""
Parallel tempering against Gibbs sampling
=========================================

A well-fitted model of bars and stripes puts its probability on 14 sharp
patterns separated by improbable states. Block Gibbs sampling moves by small
steps, so a chain started in one pattern stays near it. Parallel tempering
runs copies of the chain at higher temperatures, where the modes melt into one
another, and swaps states between neighbouring temperatures so that the chains
at the model's own temperature jump between modes.

You will learn how to

* fit an RBM to bars and stripes with the exact gradient (``"exact"``), and
  score it against the best possible log-likelihood;
* run :class:`natural_bm.sampling.GibbsSampler` and
  ``natural_bm.sampling.tempering.ParallelTempering`` from the same start;
* measure mixing by the patterns visited, and judge a temperature ladder by its
  swap rates.
"""

# %%
# A sharp model of bars and stripes
# ---------------------------------
# 3x3 bars and stripes has 14 patterns. An RBM with 12 hidden units fitted by
# the exact log-likelihood gradient (both phases by enumeration: no sampling
# error) comes close to the best achievable log-likelihood, minus the entropy
# of the data.

import matplotlib.pyplot as plt
import numpy as np
import torch

from natural_bm import RBM, SGD
from natural_bm.datasets import bars_and_stripes, bars_and_stripes_log_likelihood, bars_and_stripes_patterns
from natural_bm.estimators import log_likelihood, log_partition_exact
from natural_bm.sampling import GibbsSampler
from natural_bm.sampling.tempering import ParallelTempering

x = bars_and_stripes(2000, 3, seed=0)
rbm = RBM(9, 12, seed=0, dtype=torch.float64)
rbm.compile(SGD(0.2, momentum=0.9), "exact")
rbm.fit(x, batch_size=100, epochs=150, verbose=0, seed=0)

log_z = log_partition_exact(rbm, progress=False)
train_ll, _ = log_likelihood(rbm, x, log_z)
print(f"training log-likelihood {train_ll:.3f} nats per pattern "
      f"(best possible: {bars_and_stripes_log_likelihood(3):.3f})")

# %%
# Gibbs chains and tempered chains from one mode
# ----------------------------------------------
# Twenty chains start in the same pattern. Plain Gibbs runs 300 sweeps at
# beta = 1. Parallel tempering runs chains at 8 inverse temperatures from 1
# down to 0.1 (a geometric ladder); each step is one Gibbs sweep at every
# temperature followed by Metropolis swaps between neighbours. Only the
# beta = 1 chains sample the model, so only they are counted.

patterns, _ = bars_and_stripes_patterns(3)
codes = {tuple(p) for p in patterns.astype(int).tolist()}
start = torch.from_numpy(patterns[[1]]).double().expand(20, 9).clone()
n_steps = 300


def visited_so_far(trace):
    """How many of the 14 patterns the chains have visited after each step."""
    seen, counts = set(), []
    for v in trace:
        seen |= {tuple(row) for row in v.long().tolist()} & codes
        counts.append(len(seen))
    return counts


generator = torch.Generator().manual_seed(1)
gibbs = GibbsSampler(rbm)
chains, gibbs_trace = gibbs.init_chains(start.clone(), generator), []
for _ in range(n_steps):
    chains = gibbs.run(chains, 1, generator)
    gibbs_trace.append(chains[0])

tempering = ParallelTempering(rbm, n_temperatures=8)
tempering.init_chains(start.clone(), generator)
pt_trace = [tempering.step(generator)[0] for _ in range(n_steps)]

gibbs_visits, pt_visits = visited_so_far(gibbs_trace), visited_so_far(pt_trace)
rates = tempering.swap_rates().numpy()
print(f"after {n_steps} steps: Gibbs visited {gibbs_visits[-1]} of 14 patterns, "
      f"parallel tempering {pt_visits[-1]} of 14")
print("swap rates between neighbouring temperatures:", np.round(rates, 2))

# %%
# The figure
# ----------
# Left: patterns visited by the 20 chains at beta = 1. A tempering step costs
# one sweep per temperature, 8 here, so its run is drawn twice: per step
# (solid) and per sweep (dashed), the fair comparison with Gibbs. Right: the swap
# rate of each pair of neighbouring temperatures. Rates near 0 would mean the
# rungs are too far apart for states to pass down the ladder; rates near 1,
# that the ladder has more rungs than it needs.

betas = tempering.betas.numpy()
fig, (ax, ax_rates) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
steps = np.arange(1, n_steps + 1)
ax.step(steps, gibbs_visits, where="post", color="C0", label="block Gibbs")
ax.step(steps, pt_visits, where="post", color="C1", label="tempering, per step")
sweeps = steps * tempering.n_temperatures  # the same run counted in sweeps of all 8 temperatures
ax.step(sweeps[sweeps <= n_steps], np.array(pt_visits)[sweeps <= n_steps], where="post", color="C1", ls="--",
        label="tempering, per sweep")
ax.axhline(len(codes), color="k", ls=":", lw=1, label="all 14 patterns")
ax.set_xlabel("steps or sweeps")
ax.set_ylabel("distinct patterns visited")
ax.set_ylim(0, 15)
ax.set_title("20 chains started in one pattern")
ax.legend(loc="upper right", bbox_to_anchor=(1, 0.88))

labels = [f"{betas[k]:.2f}-{betas[k + 1]:.2f}" for k in range(len(rates))]
ax_rates.bar(labels, rates, color="C1")
ax_rates.set_ylim(0, 1)
ax_rates.set_xlabel("pair of inverse temperatures")
ax_rates.set_ylabel("accepted / proposed swaps")
ax_rates.set_title("swap rates along the ladder")
ax_rates.tick_params(axis="x", labelrotation=30)
plt.show()
