"""Per-image AIS of log p*(v): annealing each image's hidden posterior from its mean-field approximation.

For a model with more than two layers, log p*(v) = log sum_h exp(-E(v, h)) is
intractable. With v clamped, what remains is a Boltzmann machine on the hidden
layers whose biases depend on v (the layers joined to v get the input
``b_k + v W_0k``), and

    log p*(v) = (terms of v alone: b_0^T v - s_0(v)) + log Z(v),

Z(v) being that conditional machine's partition function. This module
estimates log Z(v) with AIS, per image, along the same tempered path and
step kernel (``ais_steps.layered_step``) as the model's own AIS: the even
hidden layers (h2, h4, ...) are annealed and the odd ones summed out
analytically, from a base at beta = 0 in which the even layers are
independent with the inputs of the image's mean-field fixed point (so
their distribution is the mean-field posterior q(h_even | v)) and the odd
layers have zero input, to the conditional machine at beta = 1.

``n_chains`` chains per image give ``n_chains`` importance weights; their
log-mean-exp estimates log Z(v) with Jensen's bias downwards, so, like
``log_prob_importance`` (of which one step, betas [0, 1], is the special
case), the estimate of log p*(v) is a stochastic lower bound that rises to
log p*(v) as chains and betas grow (Salakhutdinov & Murray 2008 for AIS;
Burda, Grosse & Salakhutdinov 2016 for the stochastic bound). Intermediate
betas move the chains towards the true posterior, so for a given number of
products it is usually much tighter than drawing from q alone.
"""

from __future__ import annotations

import math

import torch

from natural_bm.estimators import ais_engine
from natural_bm.estimators.ais_schedule import betas_or_default
from natural_bm.estimators.ais_steps import unit_kinds, unit_sigmas
from natural_bm.rng import RandomSource
from natural_bm.seeding import new_seed
from natural_bm.validation import as_data_tensor, check_positive_int

__all__ = ["log_prob_ais"]


def _products(W: torch.Tensor):
    """``mm(bias, x) = bias + x @ W`` with a bias of one row or one per row."""
    return lambda bias, x: torch.addmm(bias, x, W) if bias.dim() == 1 else bias + x @ W


def log_prob_ais(model, v: torch.Tensor, n_chains: int = 10, n_betas: int = 1000, generator=None,
                 betas=None, batch_size: int = 1000, mf_steps: int = 30, progress: bool = False) -> torch.Tensor:
    """AIS estimate of log p*(v) (unnormalised), (n,) nats, one per row of ``v``.

    Args:
        model: a layered model (``DBM``; an ``RBM`` or any two-layer model gives -F(v) exactly).
        v: (n, n_visible) data, checked (shape, finite, range) as the estimators check it.
        n_chains: AIS chains per image (importance weights averaged per image).
        n_betas: inverse temperatures of the default schedule (``ais_schedule.default_betas``);
            ``betas`` (increasing from 0 to 1) overrides it.
        generator: a ``natural_bm.rng.RandomSource`` for the draws (None: a fresh seed).
        batch_size: images annealed together (rows = batch_size x n_chains).
        mf_steps: mean-field steps for the base (``mean_field(max_steps=mf_steps)``).

    The work is n x n_chains x n_betas block-Gibbs sweeps of the hidden layers: for a 784-500-1000
    DBM about 1e6 multiply-adds each. Log weights and the base's log partition are float64.
    """
    v = as_data_tensor(v, "v", model.n_input, device=model.device, dtype=model.dtype, value_range=model.data_range)
    if model.n_layers == 2:
        return -model.free_energy(v).double()
    if model.input_factors:
        raise ValueError("log_prob_ais needs a model without input factors (those belong to greedy "
                         "pre-training's RBMs); got input_factors "
                         f"{model.input_factors}.")
    n_chains = check_positive_int(n_chains, "n_chains")
    batch_size = check_positive_int(batch_size, "batch_size")
    betas = betas_or_default(betas, n_betas)
    if generator is None:
        generator = RandomSource(new_seed(), model.device)
    out = []
    with torch.no_grad():
        for lo in range(0, v.shape[0], batch_size):
            out.append(_log_prob_batch(model, v[lo : lo + batch_size], n_chains, betas, generator, mf_steps,
                                       progress))
    return torch.cat(out)


def _log_prob_batch(model, v, n_chains, betas, generator, mf_steps, progress):
    m = model
    n = v.shape[0]
    mu, _ = m.mean_field(v, max_steps=mf_steps)
    # the conditional machine: layers 1.. of the model, edges among them, biases with v's input folded in
    hidden = list(range(1, m.n_layers))
    sizes = tuple(m.layer_sizes[k] for k in hidden)
    kinds, sigmas = unit_kinds(m)[1:], unit_sigmas(m)[1:]
    edges, up, down = [], [], []
    b_B = [m.bias(k).detach() for k in hidden]
    for (i, j), W in m.weights.items():
        W = W.detach()
        if i == 0:  # the data's input to layer j, one row per image
            b_B[j - 1] = b_B[j - 1] + v @ W
        else:
            edges.append((i - 1, j - 1))
            up.append(_products(W))
            down.append(_products(W.T))
    kept = tuple(k - 1 for k in hidden if k % 2 == 0)
    summed = tuple(k - 1 for k in hidden if k % 2 == 1)
    # base: the kept layers independent with their mean-field inputs (so distributed as q), summed ones
    # with zero input
    b_A = []
    for c, k in enumerate(hidden):
        b_A.append(m.layer_input(k, mu) if k % 2 == 0 else torch.zeros(sizes[c], dtype=v.dtype, device=v.device))
    log_z_A = sum(m.units[k].log_partition(b_A[k - 1].double().expand(n, -1)) for k in hidden)  # (n,)
    rows = lambda t: t.repeat_interleave(n_chains, 0) if t.dim() == 2 else t  # noqa: E731
    b_A_r, b_B_r = [rows(b) for b in b_A], [rows(b) for b in b_B]
    state = tuple(m.units[k + 1].sample(b_A_r[k], 1.0, generator) for k in kept)
    n_S, n_K = sum(sizes[k] for k in summed), sum(sizes[k] for k in kept)
    static = (tuple(edges), kept, summed, sizes, kinds)
    consts = (tuple(up), tuple(down), tuple(b_A_r), tuple(b_B_r), sigmas)
    problem = ais_engine.AnnealProblem(ais_engine.LAYERED, consts, static, n_S, n_K)
    _, log_w = ais_engine.anneal(problem, state, betas, ais_engine.AnnealSource(gen=generator), progress=progress,
                                 desc="posterior AIS")
    log_z = log_z_A + torch.logsumexp(log_w.view(n, n_chains), 1) - math.log(n_chains)
    visible_terms = v.double() @ m.bias(0).double() - torch.as_tensor(m.units[0].self_energy(v)).double()
    return visible_terms + log_z
