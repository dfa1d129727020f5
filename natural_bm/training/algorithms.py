"""Training algorithms: how a batch becomes a log-likelihood gradient.

The gradient of the mean log-likelihood of an RBM is, for every parameter,
the data (positive-phase) statistics minus the model (negative-phase)
statistics (see ``RBM.statistics``). The algorithms differ only in where the
negative-phase samples come from:

* :class:`ContrastiveDivergence` (CD-k): k Gibbs steps started at the batch.
* :class:`PersistentContrastiveDivergence` (PCD-k, Tieleman 2008): k Gibbs
  steps of ``n_chains`` persistent chains, kept across batches and epochs.
* :class:`ExactGradient`: exact model statistics by enumerating every state
  (tiny models only; used to test the others).

Each algorithm's ``step(model, v, generator)`` returns ``(grads, loss)``:
the ascent direction per parameter and the per-row reconstruction
cross-entropy (nats) that the fit loop logs as ``loss``.

CD and PCD on an ``RBM`` run a compiled, fused step
(``natural_bm.training.rbm_steps``) when the model's ``jit_compile`` says so
(see ``BoltzmannMachine.compile``: by default on CUDA devices); batches of another size than the first
(the last, partial batch of an epoch) run eagerly, so nothing is recompiled.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from natural_bm.kernels import binary_codes
from natural_bm.rng import randint
from natural_bm.validation import check_positive_int

__all__ = [
    "Algorithm",
    "ContrastiveDivergence",
    "PersistentContrastiveDivergence",
    "ExactGradient",
    "MeanFieldPersistent",
    "get_algorithm",
]


class Algorithm:
    """Base class: ``step`` computes the gradient; state is saved with the model."""

    name = "algorithm"

    #: the last batch's data-dependent means, one (n_k,) tensor per layer (set by ``step`` where the
    #: positive phase computes them; None where it does not, e.g. the compiled RBM steps)
    positive_means: list | None = None

    def on_fit_begin(self, model, x: torch.Tensor, generator) -> None:
        """Called once by ``fit`` before the first batch (PCD initialises chains here)."""
        self._jit_rows = None

    def data_means(self, model, v: torch.Tensor) -> list:
        """The data-dependent means of every layer for the batch ``v`` that ``step`` just used: the
        positive phase's, or (where the step did not keep them) the mean-field posterior's. For centering
        and sparsity targets."""
        if self.positive_means is not None:
            return self.positive_means
        mu, _ = model.mean_field(v)
        return [m.mean(0) for m in mu]

    def positive_phase(self, model, v: torch.Tensor, generator):
        """Hidden probabilities and a hidden sample given the data, plus the loss.

        Returns ``(h_prob, h_sample, recon_logits, loss)`` where ``loss`` is the
        cross-entropy between ``v`` and sigmoid(recon_logits), the
        reconstruction through the sampled hidden layer.
        """
        h_prob = model.prob_h_given_v(v)
        h_sample = model.units[1].sample_from_mean(h_prob, generator)
        recon_logits = model.visible_input(h_sample)
        loss = model.units[0].reconstruction_error(recon_logits, v)
        return h_prob, h_sample, recon_logits, loss

    #: whether ``step`` takes clamped layers (labels): algorithms with a mean-field positive phase
    supports_clamp = False
    #: whether ``fit`` can split its batches (and persistent chains) across the ranks of a process group
    supports_data_parallel = True
    #: persistent chains (a tensor, or one tensor per layer), None for algorithms without them
    chains = None
    #: the rows [lo, hi) of the global chains this rank holds in data-parallel training, else None
    _chain_shard: tuple[int, int] | None = None

    def persistent_rows(self) -> int | None:
        """How many persistent chains the algorithm keeps (None: it keeps none)."""
        return None

    def shard_chains(self, lo: int, hi: int) -> None:
        """Keep rows [lo, hi) of the (global) chains: this rank's share in data-parallel training."""
        self.chains = _map_chains(self.chains, lambda c: c[lo:hi].clone())
        self._chain_shard = (lo, hi)

    def unshard_chains(self) -> None:
        """Gather every rank's chains back into the global chains (a collective: every rank calls it)."""
        if self._chain_shard is not None:
            self.chains = self._global_chains()
            self._chain_shard = None

    def _global_chains(self):
        """The chains of every rank in global order (all-gathered while sharded)."""
        if self._chain_shard is None:
            return self.chains
        from natural_bm.distributed import all_gather_rows

        return _map_chains(self.chains, all_gather_rows)

    def step(self, model, v: torch.Tensor, generator, clamp: dict | None = None):
        """(grads by parameter name, per-row loss) for the batch ``v``; ``clamp`` = {layer: states} held
        as data in the positive phase (labels; only where ``supports_clamp``)."""
        raise NotImplementedError

    #: whether ``compiled_update`` exists (the compiled RBM steps: CD and PCD)
    has_compiled_step = False

    def compiled_update(self, model, v: torch.Tensor, key: torch.Tensor):
        """``(grads, per-row loss)`` of the compiled RBM step with stream ``key`` (0-d int64); only
        algorithms whose ``step`` has a compiled path (CD, PCD) define it. ``fit``'s CUDA-graph
        update (``training.graphed_update``) captures it."""
        raise NotImplementedError(f"{type(self).__name__} has no compiled step.")

    def epoch_logs(self) -> dict[str, float]:
        """Keys the fit loop adds to each epoch's logs (e.g. parallel tempering's swap rates)."""
        return {}

    def model_chains(self):
        """The persistent chains that sample the model (beta = 1), for reverse AIS to start from:
        visible rows or a list of layer states; None for algorithms without persistent chains."""
        return None

    # ------------------------------------------------------------ compiled steps
    _jit_rows: int | None = None

    def use_compiled(self, model, rows: int) -> bool:
        """Whether a batch of ``rows`` rows runs the compiled RBM step (its uniforms are keyed
        per batch by ``randint(2**62, (), generator, device)``)."""
        if not model.supports_compiled_steps or not model.use_jit_compile():
            return False
        if self._jit_rows is None:
            self._jit_rows = rows
        return rows == self._jit_rows

    def _counters(self, rows: int, model) -> torch.Tensor:
        """(rows, max(n_visible, n_hidden)) int64 counters 0, 1, ... on the model's device (cached)."""
        m = max(model.n_visible, model.n_hidden)
        idx = getattr(self, "_idx", None)
        if idx is None or idx.shape != (rows, m) or idx.device != model.W.device:
            idx = torch.arange(rows * m, device=model.W.device, dtype=torch.int64).view(rows, m)
            self._idx = idx
        return idx

    def get_config(self) -> dict:
        return {"name": self.name}

    def state_dict(self) -> dict:
        return {"config": self.get_config()}

    def load_state_dict(self, state: dict) -> None:
        pass


def _map_chains(chains, fn):
    """``fn`` applied to a chains tensor or to each layer's tensor of a list (None stays None)."""
    if chains is None:
        return None
    if isinstance(chains, torch.Tensor):
        return fn(chains)
    return [None if c is None else fn(c) for c in chains]


class ContrastiveDivergence(Algorithm):
    """CD-k: negative samples from k Gibbs steps started at the data.

    The chain starts from the hidden sample of the positive phase, samples
    binary visible units, and the negative statistics use the hidden
    *probabilities* of the last visible state (Hinton 2010, "A practical guide").
    """

    name = "cd"
    has_compiled_step = True

    def __init__(self, k: int = 1) -> None:
        self.k = check_positive_int(k, "k")

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k}

    def step(self, model, v, generator, clamp=None):
        if self.use_compiled(model, v.shape[0]):
            return self.compiled_update(model, v, randint(2**62, (), generator, v.device))
        h_prob, h_sample, logits, loss = self.positive_phase(model, v, generator)
        self.positive_means = [v.mean(0), h_prob.mean(0)]
        v_neg = model.units[0].sample(logits, 1.0, generator)
        for _ in range(self.k - 1):
            v_neg = model.sample_v(model.sample_h(v_neg, generator=generator), generator=generator)
        h_neg = model.prob_h_given_v(v_neg)
        return model.statistics_difference(v, h_prob, v_neg, h_neg), loss

    def compiled_update(self, model, v, key):
        """The compiled step (``rbm_steps``) on the batch ``v`` with the 0-d int64 stream ``key``:
        ``(grads, per-row loss)``. Pure tensor work, so a CUDA graph can capture it (``graphed_update``)."""
        from natural_bm.training.rbm_steps import compiled_cd_step

        dW, db, dc, loss = compiled_cd_step(v, model.W, model.vbias, model.hbias, key,
                                            self._counters(v.shape[0], model), self.k, model.up_factor,
                                            model.down_factor)
        self.positive_means = None
        return {"W": dW, "vbias": db, "hbias": dc}, loss


class PersistentContrastiveDivergence(Algorithm):
    """PCD-k: ``n_chains`` persistent Gibbs chains advanced k steps per batch.

    The number of chains is independent of the batch size. Chains are
    initialised at ``fit`` start from randomly chosen training rows
    (binarised by sampling) unless they already exist (resumed training),
    and are saved with the model's training state.
    """

    name = "pcd"
    has_compiled_step = True

    def __init__(self, k: int = 1, n_chains: int = 100) -> None:
        self.k = check_positive_int(k, "k")
        self.n_chains = check_positive_int(n_chains, "n_chains")
        self.chains: torch.Tensor | None = None

    def persistent_rows(self) -> int:
        return self.n_chains

    def model_chains(self):
        return self._global_chains()

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k, "n_chains": self.n_chains}

    def on_fit_begin(self, model, x, generator):
        super().on_fit_begin(model, x, generator)
        if self.chains is not None and self.chains.shape == (self.n_chains, model.n_input):
            self.chains = self.chains.to(device=x.device, dtype=x.dtype)
            return
        idx = randint(x.shape[0], (self.n_chains,), generator, x.device)
        self.chains = model.units[0].states_from_data(x[idx], generator)

    def step(self, model, v, generator, clamp=None):
        if self.chains is None:
            self.on_fit_begin(model, v, generator)
        if self.use_compiled(model, v.shape[0]):
            return self.compiled_update(model, v, randint(2**62, (), generator, v.device))
        h_prob, _, _, loss = self.positive_phase(model, v, generator)
        self.positive_means = [v.mean(0), h_prob.mean(0)]
        self.chains = model.gibbs(self.chains, self.k, generator=generator)
        h_neg = model.prob_h_given_v(self.chains)
        return model.statistics_difference(v, h_prob, self.chains, h_neg), loss

    def compiled_update(self, model, v, key):
        """The compiled step (``rbm_steps``) on the batch ``v`` and the chains, with the 0-d int64 stream
        ``key``: ``(grads, per-row loss)``; ``self.chains`` becomes the advanced chains."""
        from natural_bm.training.rbm_steps import compiled_pcd_step

        rows = v.shape[0] + self.chains.shape[0]
        dW, db, dc, loss, self.chains = compiled_pcd_step(
            v, self.chains, model.W, model.vbias, model.hbias, key, self._counters(rows, model), self.k,
            model.up_factor, model.down_factor)
        self.positive_means = None
        return {"W": dW, "vbias": db, "hbias": dc}, loss

    def state_dict(self) -> dict:
        chains = self._global_chains()
        return {"config": self.get_config(), "chains": None if chains is None else chains.clone()}

    def load_state_dict(self, state: dict) -> None:
        chains = state.get("chains")
        self.chains, self._chain_shard = (None if chains is None else chains.clone()), None


class ExactGradient(Algorithm):
    """Exact log-likelihood gradient by enumerating all 2^n_hidden hidden states.

    Only for tiny models (n_hidden <= 20); the negative statistics are exact
    expectations under the model. Used to test CD and PCD.
    """

    name = "exact"

    def step(self, model, v, generator, clamp=None):
        h_prob, _, _, loss = self.positive_phase(model, v, generator)
        self.positive_means = [v.mean(0), h_prob.mean(0)]
        stats_neg = exact_model_statistics(model)
        stats_pos = model.statistics(v, h_prob)
        return {k: stats_pos[k] - stats_neg[k] for k in stats_pos}, loss


def exact_model_statistics(model) -> dict[str, torch.Tensor]:
    """<v h^T>, <v>, <h> under an RBM's distribution, by enumerating the hidden layer."""
    if model.n_hidden > 20:
        raise ValueError(f"exact statistics enumerate 2^n_hidden states; n_hidden={model.n_hidden} > 20.")
    dev = model.W.device
    h = binary_codes(0, 2**model.n_hidden, model.n_hidden, dev)  # (2^nh, nh), same order as itertools.product
    W, b, c = model.W.double(), model.vbias.double(), model.hbias.double()
    act = h @ W.T + b  # (2^nh, nv)
    log_p_h = h @ c + F.softplus(act).sum(1)  # unnormalised log p(h)
    p_h = torch.softmax(log_p_h, 0)
    v_given_h = torch.sigmoid(act)  # E[v | h]
    ev = p_h @ v_given_h
    eh = p_h @ h
    evh = (v_given_h * p_h[:, None]).T @ h
    dt = model.W.dtype
    return {"W": evh.to(dt), "vbias": ev.to(dt), "hbias": eh.to(dt)}


class MeanFieldPersistent(Algorithm):
    """DBM training (Salakhutdinov & Hinton 2009): mean-field positive phase,
    persistent-chain negative phase.

    Positive statistics use the mean-field posterior of the hidden layers given
    the batch (``mf_steps`` updates at most, tolerance ``mf_atol``); negative
    statistics use ``n_chains`` persistent chains over all layers, advanced
    ``k`` block-Gibbs sweeps per batch. ``last_mf_steps`` records the
    mean-field steps of the last batch.
    """

    name = "mfpcd"
    supports_clamp = True

    def __init__(self, k: int = 5, n_chains: int = 100, mf_steps: int = 10, mf_atol: float = 1e-7) -> None:
        self.k = check_positive_int(k, "k")
        self.n_chains = check_positive_int(n_chains, "n_chains")
        self.mf_steps = check_positive_int(mf_steps, "mf_steps")
        self.mf_atol = float(mf_atol)
        self.chains: list | None = None
        self.last_mf_steps = 0

    def persistent_rows(self) -> int:
        return self.n_chains

    def model_chains(self):
        return self._global_chains()

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k, "n_chains": self.n_chains, "mf_steps": self.mf_steps,
                "mf_atol": self.mf_atol}

    def on_fit_begin(self, model, x, generator):
        super().on_fit_begin(model, x, generator)
        if self.chains is not None and self.chains[0].shape == (self.n_chains, model.n_input):
            return
        idx = randint(x.shape[0], (self.n_chains,), generator, x.device)
        self.chains = model.init_states(model.units[0].states_from_data(x[idx], generator), generator)

    def step(self, model, v, generator, clamp=None):
        if self.chains is None:
            self.on_fit_begin(model, v, generator)
        mu, self.last_mf_steps = model.mean_field(v, max_steps=self.mf_steps, atol=self.mf_atol, clamp=clamp)
        self.positive_means = [m.mean(0) for m in mu]
        loss = model.reconstruction_error_from_means(v, mu, generator)
        pos = model.sufficient_statistics(mu)
        self.chains = model.gibbs(self.chains, self.k, generator=generator)
        neg = model.sufficient_statistics(self.chains)
        return {name: pos[name] - neg[name] for name in pos}, loss

    def state_dict(self) -> dict:
        chains = self._global_chains()
        return {"config": self.get_config(), "chains": None if chains is None else [c.clone() for c in chains]}

    def load_state_dict(self, state: dict) -> None:
        chains = state.get("chains")
        self.chains, self._chain_shard = (None if chains is None else [c.clone() for c in chains]), None


class ParallelTemperingAlgorithm(Algorithm):
    """Parallel tempering (``"pt"``): the negative phase from persistent chains at K temperatures.

    ``n_chains`` chains run at each inverse temperature of ``betas`` (default: ``n_temperatures``
    geometrically spaced from 1 to ``min_beta``); every update advances them ``k`` steps of
    ``natural_bm.sampling.ParallelTempering`` (a sweep at every temperature, then neighbour swaps) and
    takes the negative statistics from the beta = 1 chains. The positive phase is the exact posterior
    for two layers, mean-field (``mf_steps``) for deeper models. Each epoch logs the swap rate of each
    neighbouring pair (``swap_rate_<k>``, since the last epoch), to judge the ladder.
    """

    name = "pt"
    supports_clamp = True

    def __init__(self, k: int = 1, n_chains: int = 100, n_temperatures: int = 10, min_beta: float = 0.1,
                 betas=None, mf_steps: int = 10) -> None:
        from natural_bm.sampling.tempering import geometric_betas

        self.k = check_positive_int(k, "k")
        self.n_chains = check_positive_int(n_chains, "n_chains")
        self.mf_steps = check_positive_int(mf_steps, "mf_steps")
        self.betas = (geometric_betas(n_temperatures, min_beta) if betas is None
                      else torch.as_tensor(betas, dtype=torch.float64))
        self.sampler = None
        self._saved_state = None
        self._counts = None

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k, "n_chains": self.n_chains, "betas": self.betas.tolist(),
                "mf_steps": self.mf_steps}

    def on_fit_begin(self, model, x, generator):
        from natural_bm.sampling.tempering import ParallelTempering

        super().on_fit_begin(model, x, generator)
        if self.sampler is not None and self.sampler.model is model and self.sampler.chains is not None:
            return
        self.sampler = ParallelTempering(model, self.betas)
        if self._saved_state is not None:
            self.sampler.load_state_dict(self._saved_state)
            self._saved_state = None
            if self.sampler.chains is not None:
                return
        idx = randint(x.shape[0], (self.n_chains,), generator, x.device)
        self.sampler.init_chains(model.units[0].states_from_data(x[idx], generator), generator)

    def step(self, model, v, generator, clamp=None):
        if self.sampler is None or self.sampler.chains is None:
            self.on_fit_begin(model, v, generator)
        mu, _ = model.mean_field(v, max_steps=1 if model.n_layers == 2 else self.mf_steps, clamp=clamp)
        self.positive_means = [m.mean(0) for m in mu]
        loss = model.reconstruction_error_from_means(v, mu, generator)
        pos = model.sufficient_statistics(mu)
        neg = model.sufficient_statistics(self.sampler.run(self.k, generator))
        return {name: pos[name] - neg[name] for name in pos}, loss

    def model_chains(self):
        if self.sampler is None or self.sampler.chains is None:
            return None
        if self._chain_shard is None:
            return self.sampler.chains[0]
        return self._global_state()["chains"][0]

    # data-parallel: every temperature's chains are sharded by rows; rank 0 keeps the swap counts so far,
    # the others count from zero, and sums give the global counts
    def persistent_rows(self) -> int:
        return self.n_chains

    def shard_chains(self, lo: int, hi: int) -> None:
        from natural_bm.distributed import rank

        s = self.sampler
        s.chains = [[c[lo:hi].clone() for c in ch] for ch in s.chains]
        if rank() != 0:
            s.swaps_proposed.zero_()
            s.swaps_accepted.zero_()
            if self._counts is not None:
                self._counts = (torch.zeros_like(self._counts[0]), torch.zeros_like(self._counts[1]))
        self._chain_shard = (lo, hi)

    def unshard_chains(self) -> None:
        if self._chain_shard is not None:
            state, counts = self._global_state(), self._global_epoch_counts()
            s = self.sampler
            s.chains, s.swaps_proposed, s.swaps_accepted = state["chains"], state["swaps_proposed"], \
                state["swaps_accepted"]
            self._counts = None if counts is None else tuple(counts)
            self._chain_shard = None

    def _global_epoch_counts(self) -> list | None:
        """The swap counts at the last epoch's end, summed over the ranks while sharded."""
        return None if self._counts is None else self._sum_counts(self._counts)

    def _sum_counts(self, counts) -> list:
        """Integer swap counts (int64 tensors) summed over the ranks while sharded (a collective)."""
        if self._chain_shard is None:
            return list(counts)
        from natural_bm.distributed import all_reduce_sum

        summed = [c.double() for c in counts]
        all_reduce_sum(summed)
        return [c.round().to(torch.int64) for c in summed]

    def _global_state(self) -> dict:
        """The sampler's state with every rank's chains and swap counts (collective while sharded)."""
        state = self.sampler.state_dict()
        if self._chain_shard is None:
            return state
        from natural_bm.distributed import all_gather_rows

        state["chains"] = [[all_gather_rows(c) for c in ch] for ch in self.sampler.chains]
        state["swaps_proposed"], state["swaps_accepted"] = self._sum_counts(
            (state["swaps_proposed"], state["swaps_accepted"]))
        return state

    def epoch_logs(self) -> dict[str, float]:
        if self.sampler is None:
            return {}
        counts = (self.sampler.swaps_proposed.clone(), self.sampler.swaps_accepted.clone())
        prev = self._counts or (torch.zeros_like(counts[0]), torch.zeros_like(counts[1]))
        self._counts = counts
        proposed, accepted = self._sum_counts((counts[0] - prev[0], counts[1] - prev[1]))  # every rank's
        return {f"swap_rate_{k}": float(accepted[k]) / float(proposed[k]) if proposed[k] else math.nan
                for k in range(len(proposed))}

    def state_dict(self) -> dict:
        # with the swap counts at the last epoch's end, so a resumed epoch logs its own swap rates
        return {"config": self.get_config(), "sampler": None if self.sampler is None else self._global_state(),
                "epoch_counts": self._global_epoch_counts()}

    def load_state_dict(self, state: dict) -> None:
        self.sampler, self._saved_state = None, state.get("sampler")
        counts = state.get("epoch_counts")  # (absent from files before it was saved)
        self._counts = None if counts is None else (counts[0].clone(), counts[1].clone())
        self._chain_shard = None


_ALGORITHMS = {
    "cd": ContrastiveDivergence,
    "pcd": PersistentContrastiveDivergence,
    "exact": ExactGradient,
    "mfpcd": MeanFieldPersistent,
    "pt": ParallelTemperingAlgorithm,
}


def get_algorithm(algorithm: str | Algorithm, **kwargs) -> Algorithm:
    """An algorithm instance from a name ('cd', 'pcd', 'exact') or pass one through."""
    if isinstance(algorithm, Algorithm):
        return algorithm
    try:
        cls = _ALGORITHMS[str(algorithm).lower()]
    except KeyError:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {sorted(_ALGORITHMS)}.") from None
    return cls(**kwargs)
