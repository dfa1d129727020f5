"""Training algorithms: how a batch becomes a log-likelihood gradient.

The gradient of the mean log-likelihood is, for every parameter, the data
(positive-phase) statistics minus the model (negative-phase) statistics (see
``LayeredBM.sufficient_statistics``). The algorithms differ in where the
negative-phase samples come from:

* :class:`ContrastiveDivergence` (CD-k): k Gibbs steps started at the batch.
* :class:`PersistentContrastiveDivergence` (PCD-k, Tieleman 2008): k Gibbs
  steps of ``n_chains`` persistent chains, kept across batches and epochs.
* :class:`ExactGradient`: exact model statistics by enumerating every state
  (tiny models only; used to test the others).
* :class:`MeanFieldPersistent`: DBMs, a mean-field positive phase and persistent chains.
* :class:`~natural_bm.training.tempering.ParallelTemperingAlgorithm` (``training/tempering.py``):
  persistent chains at a ladder of temperatures.

An algorithm holds only its settings (``k``, ``n_chains``...). Its state (the
persistent chains, swap counts) is explicit, as in BlackJAX's kernels::

    state = algorithm.init(model, data, generator)          # None for CD and the exact gradient
    grads, info, state = algorithm.step(model, batch, state, generator)

``grads`` maps parameter names to ascent directions of the mean
log-likelihood; ``info`` is a :class:`StepInfo` (the per-row reconstruction
cross-entropy in nats that the fit loop logs as ``loss``, and the positive
phase's layer values where it computed them, whose means centering and
sparsity targets use). The trainer (``natural_bm.training.trainer``) keeps the
state; the data-parallel module shards it; the compiled RBM steps
(``natural_bm.training.rbm_steps``) have their own entry, ``compiled_step``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from natural_bm.kernels import binary_codes
from natural_bm.rng import randint
from natural_bm.training.precision import check_precision, product_dtype
from natural_bm.training.rbm_steps import (
    Workspace,
    cd_kernel,
    compiled_cd_step,
    compiled_pcd_step,
    pcd_kernel,
    source_uniforms,
)
from natural_bm.validation import check_positive_int

__all__ = [
    "Algorithm",
    "ChainState",
    "ContrastiveDivergence",
    "ExactGradient",
    "MeanFieldPersistent",
    "PersistentContrastiveDivergence",
    "StepInfo",
    "exact_model_statistics",
    "positive_phase",
]


class StepInfo(NamedTuple):
    """What a step reports besides the gradient.

    Attributes:
        loss: (batch,) reconstruction cross-entropy of each row, nats.
        positive: the positive phase's value of every layer, one (batch, n_k) tensor per layer (the data
            rows and the hidden layers' conditional or mean-field means), where the step computed them;
            None where it did not (the compiled RBM steps). Their column means are the data-dependent
            means that centering and sparsity targets use (taken only when a run needs them).
    """

    loss: torch.Tensor
    positive: list | None = None


class ChainState(NamedTuple):
    """Persistent chains: an (n_chains, n_visible) tensor (PCD on an RBM) or a list of layer states
    (mean-field PCD on a DBM)."""

    chains: Any


def initial_states(model, data: torch.Tensor, rows: int, generator) -> torch.Tensor:
    """Visible states of ``rows`` training rows drawn at random (binarised by sampling for binary units)."""
    idx = randint(data.shape[0], (rows,), generator, data.device)
    return model.units[0].states_from_data(data[idx], generator)


class Algorithm:
    """Base class: settings only; ``init`` makes the state and ``step`` advances it."""

    name = "algorithm"
    #: whether ``step`` takes clamped layers (labels): algorithms with a mean-field positive phase
    supports_clamp = False
    #: whether ``fit`` can split its batches (and persistent chains) across the ranks of a process group
    supports_data_parallel = True
    #: whether ``compiled_step`` exists (the compiled RBM steps: CD and PCD)
    has_compiled_step = False

    def check_model(self, model) -> None:
        """Refuse, with a ValueError naming the fix, a model these settings cannot train (called by the
        ``Trainer``); every model passes by default."""

    def init(self, model, data: torch.Tensor, generator) -> Any:
        """A fresh state for training ``model`` on ``data`` (None for algorithms without one)."""
        return None

    def state_is_usable(self, model, state) -> bool:
        """Whether ``state`` (e.g. restored from a checkpoint) can continue training ``model``."""
        return True

    def step(self, model, v: torch.Tensor, state, generator, clamp: dict | None = None):
        """``(grads by parameter name, StepInfo, new state)`` for the batch ``v``; ``clamp`` = {layer:
        states} held as data in the positive phase (labels; only where ``supports_clamp``). ``fit`` calls it
        without autograd (on the CPU inside ``torch.inference_mode``: ``training.fit.update_mode``)."""
        raise NotImplementedError

    def compiled_step(self, model, v: torch.Tensor, state, key: torch.Tensor, counters: torch.Tensor):
        """``step`` through the compiled RBM kernels with stream ``key`` (0-d int64) and ``counters``
        (``rbm_steps.CompiledSteps.counters``); pure tensor work, so a CUDA graph can capture it."""
        raise NotImplementedError(f"{type(self).__name__} has no compiled step.")

    def compiled_rows(self, v: torch.Tensor) -> int:
        """Rows of the counters ``compiled_step`` needs for the batch ``v``."""
        return v.shape[0]

    def persistent_rows(self) -> int | None:
        """How many persistent chains the algorithm keeps (None: it keeps none)."""
        return None

    def epoch_logs(self, state, reduce_counts=None) -> tuple[dict[str, float], Any]:
        """Keys the fit loop adds to each epoch's logs (e.g. parallel tempering's swap rates), and the state.
        ``reduce_counts``: in data-parallel runs, sums a list of count tensors over the ranks."""
        return {}, state

    def model_chains(self, state):
        """The persistent chains that sample the model (beta = 1), for reverse AIS to start from:
        visible rows or a list of layer states; None for algorithms without persistent chains."""
        return None

    def get_config(self) -> dict:
        return {"name": self.name}

    def state_dict(self, state) -> dict:
        """The state as plain tensors and dicts (a checkpoint's ``algorithm`` entry)."""
        return {"config": self.get_config()}

    def load_state(self, model, saved: dict):
        """The state ``state_dict`` saved, for ``model``."""
        return None


class ContrastiveDivergence(Algorithm):
    """CD-k: negative samples from k Gibbs steps started at the data.

    The chain starts from the hidden sample of the positive phase, samples
    binary visible units, and the negative statistics use the hidden
    *probabilities* of the last visible state (Hinton 2010, "A practical guide").

    ``precision``: ``"float32"`` (default: the model's dtype) or ``"bfloat16"``, the matrix products of
    a binary RBM's step in bfloat16 with float32 accumulation and master weights
    (``natural_bm.training.precision``).
    """

    name = "cd"
    has_compiled_step = True

    def __init__(self, k: int = 1, precision: str = "float32") -> None:
        self.k = check_positive_int(k, "k")
        self.precision = check_precision(precision)
        self._workspace = Workspace()  # the fused kernel's buffers, reused across batches (not state)

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k, "precision": self.precision}

    def check_model(self, model) -> None:
        _check_precision_model(self, model)

    def step(self, model, v, state, generator, clamp=None):
        if model.supports_compiled_steps:  # a binary RBM: the fused kernel (rbm_steps), same stream
            nv, nh = model.n_visible, model.n_hidden
            B = v.shape[0]
            ws = self._workspace
            uniforms = ws.latest("uniform source", (generator, B, nv, nh, v.dtype, v.device), lambda: source_uniforms(
                generator, lambda s: [(B, nh)], lambda s: [(B, nv)], v.dtype, v.device, ws))
            dW, db, dc, loss, p0 = cd_kernel(v, model.W, model.vbias, model.hbias, self.k, model.up_factor,
                                             model.down_factor, uniforms, product_dtype(self.precision, v.device.type),
                                             ws)
            return {"W": dW, "vbias": db, "hbias": dc}, StepInfo(loss, [v, p0]), state
        h_prob, h_sample, logits, loss = positive_phase(model, v, generator)
        v_neg = model.units[0].sample(logits, 1.0, generator)
        for _ in range(self.k - 1):
            v_neg = model.sample_v(model.sample_h(v_neg, generator=generator), generator=generator)
        h_neg = model.prob_h_given_v(v_neg)
        info = StepInfo(loss, [v, h_prob])
        return model.statistics_difference(v, h_prob, v_neg, h_neg), info, state

    def compiled_step(self, model, v, state, key, counters):
        dW, db, dc, loss = compiled_cd_step(v, model.W, model.vbias, model.hbias, key, counters, self.k,
                                            model.up_factor, model.down_factor,
                                            product_dtype(self.precision, v.device.type))
        return {"W": dW, "vbias": db, "hbias": dc}, StepInfo(loss), state


class PersistentContrastiveDivergence(Algorithm):
    """PCD-k: ``n_chains`` persistent Gibbs chains advanced k steps per batch.

    The number of chains is independent of the batch size. ``init`` starts them
    at randomly chosen training rows (binarised by sampling); a restored state
    whose chains fit the model continues instead. ``precision`` as for
    :class:`ContrastiveDivergence`.
    """

    name = "pcd"
    has_compiled_step = True

    def __init__(self, k: int = 1, n_chains: int = 100, precision: str = "float32") -> None:
        self.k = check_positive_int(k, "k")
        self.n_chains = check_positive_int(n_chains, "n_chains")
        self.precision = check_precision(precision)
        self._workspace = Workspace()  # the fused kernel's buffers, reused across batches (not state)

    def persistent_rows(self) -> int:
        return self.n_chains

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k, "n_chains": self.n_chains, "precision": self.precision}

    def check_model(self, model) -> None:
        _check_precision_model(self, model)

    def init(self, model, data, generator) -> ChainState:
        return ChainState(initial_states(model, data, self.n_chains, generator))

    def state_is_usable(self, model, state) -> bool:
        return state is not None and state.chains is not None and \
            tuple(state.chains.shape) == (self.n_chains, model.n_input)

    def model_chains(self, state):
        return None if state is None else state.chains

    def step(self, model, v, state, generator, clamp=None):
        if model.supports_compiled_steps:  # a binary RBM: the fused kernel (rbm_steps), same stream
            nv, nh = model.n_visible, model.n_hidden
            B, C = v.shape[0], state.chains.shape[0]
            ws = self._workspace
            uniforms = ws.latest("uniform source", (generator, B, C, nv, nh, v.dtype, v.device),
                                 lambda: source_uniforms(generator, lambda s: [(B, nh), (C, nh)] if s == 0 else
                                                         [(C, nh)], lambda s: [(C, nv)], v.dtype, v.device, ws))
            dW, db, dc, loss, chains, p0 = pcd_kernel(v, state.chains, model.W, model.vbias, model.hbias, self.k,
                                                      model.up_factor, model.down_factor, uniforms,
                                                      product_dtype(self.precision, v.device.type), ws)
            return {"W": dW, "vbias": db, "hbias": dc}, StepInfo(loss, [v, p0]), ChainState(chains)
        h_prob, _, _, loss = positive_phase(model, v, generator)
        chains = model.gibbs(state.chains, self.k, generator=generator)
        h_neg = model.prob_h_given_v(chains)
        info = StepInfo(loss, [v, h_prob])
        return model.statistics_difference(v, h_prob, chains, h_neg), info, ChainState(chains)

    def compiled_rows(self, v) -> int:
        return v.shape[0] + self.n_chains

    def compiled_step(self, model, v, state, key, counters):
        dW, db, dc, loss, chains = compiled_pcd_step(v, state.chains, model.W, model.vbias, model.hbias, key,
                                                     counters, self.k, model.up_factor, model.down_factor,
                                                     product_dtype(self.precision, v.device.type))
        return {"W": dW, "vbias": db, "hbias": dc}, StepInfo(loss), ChainState(chains)

    def state_dict(self, state) -> dict:
        chains = None if state is None else state.chains
        return {"config": self.get_config(), "chains": None if chains is None else chains.clone()}

    def load_state(self, model, saved: dict):
        chains = saved.get("chains")
        return None if chains is None else ChainState(chains.clone().to(device=model.device, dtype=model.dtype))


def _check_precision_model(algorithm, model) -> None:
    """bfloat16 products are written into the fused kernels of binary RBMs only."""
    if algorithm.precision != "float32" and not model.supports_compiled_steps:
        raise ValueError(f"precision={algorithm.precision!r} runs the fused CD/PCD steps of an RBM with binary "
                         f"units; this {type(model).__name__} trains in its own dtype: use precision='float32'.")


def positive_phase(model, v: torch.Tensor, generator):
    """An RBM's hidden probabilities and a hidden sample given the data, plus the loss.

    Returns ``(h_prob, h_sample, recon_logits, loss)``: (B, n_hidden) probabilities and sample, the
    (B, n_visible) visible input of the sample, and the (B,) cross-entropy in nats between ``v`` and its
    reconstruction through the sampled hidden layer.
    """
    h_prob = model.prob_h_given_v(v)
    h_sample = model.units[1].sample_from_mean(h_prob, generator)
    recon_logits = model.visible_input(h_sample)
    loss = model.units[0].reconstruction_error(recon_logits, v)
    return h_prob, h_sample, recon_logits, loss


class ExactGradient(Algorithm):
    """Exact log-likelihood gradient of an RBM by enumerating all 2^n_hidden hidden states.

    Only for tiny models (n_hidden <= 20); the negative statistics are exact
    expectations under the model. Used to test CD and PCD. It takes no settings.
    """

    name = "exact"

    def step(self, model, v, state, generator, clamp=None):
        h_prob, _, _, loss = positive_phase(model, v, generator)
        stats_neg = exact_model_statistics(model)
        stats_pos = model.statistics(v, h_prob)
        info = StepInfo(loss, [v, h_prob])
        return {k: stats_pos[k] - stats_neg[k] for k in stats_pos}, info, state


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
    ``k`` block-Gibbs sweeps per batch.
    """

    name = "mfpcd"
    supports_clamp = True

    def __init__(self, k: int = 5, n_chains: int = 100, mf_steps: int = 10, mf_atol: float = 1e-7) -> None:
        self.k = check_positive_int(k, "k")
        self.n_chains = check_positive_int(n_chains, "n_chains")
        self.mf_steps = check_positive_int(mf_steps, "mf_steps")
        self.mf_atol = float(mf_atol)

    def persistent_rows(self) -> int:
        return self.n_chains

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k, "n_chains": self.n_chains, "mf_steps": self.mf_steps,
                "mf_atol": self.mf_atol}

    def init(self, model, data, generator) -> ChainState:
        return ChainState(model.init_states(initial_states(model, data, self.n_chains, generator), generator))

    def state_is_usable(self, model, state) -> bool:
        return state is not None and state.chains is not None and \
            tuple(state.chains[0].shape) == (self.n_chains, model.n_input)

    def model_chains(self, state):
        return None if state is None else state.chains

    def step(self, model, v, state, generator, clamp=None):
        mu, _ = model.mean_field(v, max_steps=self.mf_steps, atol=self.mf_atol, clamp=clamp)
        loss = model.reconstruction_error_from_means(v, mu, generator)
        pos = model.sufficient_statistics(mu)
        chains = model.gibbs(state.chains, self.k, generator=generator)
        neg = model.sufficient_statistics(chains)
        info = StepInfo(loss, mu)
        return {name: pos[name] - neg[name] for name in pos}, info, ChainState(chains)

    def state_dict(self, state) -> dict:
        chains = None if state is None else state.chains
        return {"config": self.get_config(), "chains": None if chains is None else [c.clone() for c in chains]}

    def load_state(self, model, saved: dict):
        chains = saved.get("chains")
        if chains is None:
            return None
        return ChainState([c.clone().to(device=model.device, dtype=model.dtype) for c in chains])
