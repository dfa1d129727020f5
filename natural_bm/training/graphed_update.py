"""The whole RBM training update replayed from one CUDA graph.

On a GPU an MNIST-sized CD-1 update is launch-bound: its arithmetic takes
microseconds, while the compiled step (``rbm_steps``) and the optimiser's
separate in-place updates launch a dozen kernels from Python. ``GraphedUpdate``
captures the compiled CD-k/PCD-k step *and* the SGD update (weight decay,
parameter groups, max-norm) once in a ``torch.cuda.CUDAGraph``. Each batch then
copies its rows, its stream key and the optimiser's current learning rate,
decay factor and momentum into the graph's static inputs and replays it.

The step's kernels and counters are those of the uncaptured compiled path, and
the key is drawn from the same stream at the same point, so the sampled states
follow the same random numbers; the parameter update reads lr and momentum
from 0-d tensors (``Optimizer.apply_gradients(hyper=...)``), which rounds
``lr * grad`` once more than the scalar form (float32: relative 6e-8 per update).

``fit`` uses it when ``GraphedUpdate.supported(trainer)``: the model is on a CUDA
device with the compiled RBM steps (``jit_compile``), ``cuda_graph`` is on
(``Trainer``), the optimiser is capturable (SGD), and the run
has no centering, sparsity targets, labels or process group. A batch of
another size (the last one of an epoch) takes the ordinary path. The graph is
captured again when what it baked in changes: the parameter or optimiser-slot
tensors themselves (a load), the chains' shape, the parameter groups (a layer-wise schedule freezing a
group) or ``nesterov``. ``capture=False`` runs the same static-buffer update
eagerly (how the CPU tests check this module).
"""

from __future__ import annotations

import copy

import torch

from natural_bm.rng import randint
from natural_bm.training.algorithms import ChainState
from natural_bm.training.rbm_steps import CompiledSteps
from natural_bm.validation import warn_user

__all__ = ["GraphedUpdate"]


class GraphedUpdate:
    """One full training update (step + optimiser) of ``rows`` rows, replayed from a CUDA graph.

    Args:
        trainer: a ``Trainer`` that ``supported`` accepts.
        rows: batch rows the graph is captured for.
        compiled: the fit's ``CompiledSteps`` (which batch size runs compiled; the counters), shared with
            the ordinary path so a batch the graph declines runs the same kernels.
        capture: capture a CUDA graph (default: whether the model is on a CUDA device); False runs
            the same update eagerly through the static buffers.
    """

    def __init__(self, trainer, rows: int, compiled: CompiledSteps | None = None,
                 capture: bool | None = None) -> None:
        self.trainer = trainer
        self.model = model = trainer.model
        self.compiled = CompiledSteps() if compiled is None else compiled
        self.rows = int(rows)
        self.capture = model.device.type == "cuda" if capture is None else bool(capture)
        self.graph = None
        self.replays = 0  # updates run through this object (tests assert it ran)
        self.builds = 0  # captures (tests assert there is one per fit unless something baked in changed)
        self.failed = False
        self._baked = None
        self._groups = None  # the parameter groups as captured (a copy)
        self.s_chains = None  # the chains' static buffer (PCD), once built

    @staticmethod
    def supported(trainer) -> bool:
        """Whether ``fit`` can run ``trainer``'s updates through a ``GraphedUpdate``."""
        return (trainer.cuda_graph and trainer.model.device.type == "cuda" and trainer.runs_compiled_steps()
                and trainer.optimizer.capturable and trainer.centering is None and trainer.sparsity is None)

    def _chains(self):
        """The persistent chains of the trainer's state (PCD), or None (CD)."""
        state = self.trainer.algorithm_state
        return None if state is None else state.chains

    def _addresses(self) -> tuple:
        """The parameters' and optimiser slots' addresses, the chains' shape and ``nesterov``: what the
        graph bakes in besides the parameter groups (the chains' values are copied in before each replay)."""
        m, opt, chains = self.model, self.trainer.optimizer, self._chains()
        return (tuple(p.data_ptr() for p in m.parameter_dict().values()),
                tuple(t.data_ptr() for slots in opt.state.values() for t in slots.values()),
                None if chains is None else tuple(chains.shape), getattr(opt, "nesterov", False))

    def _stale(self) -> bool:
        """Whether the graph must be captured (again): never captured, or something it baked in changed
        (the parameter groups are compared as values with the copy taken at the capture)."""
        return self._groups != self.trainer.optimizer.param_groups or self._baked != self._addresses()

    def _build(self, v: torch.Tensor, key: torch.Tensor) -> None:
        m, alg, opt = self.model, self.trainer.algorithm, self.trainer.optimizer
        self.builds += 1
        self.s_v = v.clone()
        self.s_key = key.clone()
        self.hyper = opt.device_hyperparameters(v.device, m.dtype)
        params = m.parameter_dict()
        groups = opt.param_groups or [{"params": list(params), "frozen": False}]
        opt.make_slots({n: params[n] for g in groups if not g["frozen"] for n in g["params"]})  # outside the graph
        chains = self._chains()
        self.s_chains = None if chains is None else chains.clone()
        counters = self.compiled.counters(alg.compiled_rows(v), max(m.n_visible, m.n_hidden), m.W.device)

        def body():
            state = None if self.s_chains is None else ChainState(self.s_chains)
            grads, info, state = alg.compiled_step(m, self.s_v, state, self.s_key, counters)
            opt.apply_gradients(params, grads, self.hyper)
            if self.s_chains is not None:
                self.s_chains.copy_(state.chains)
            return info.loss.mean()

        self.body = body
        self._groups = copy.deepcopy(opt.param_groups)
        self._baked = self._addresses()
        if not self.capture:
            self.graph = None
            return
        chains0 = self.s_chains.clone() if self.s_chains is not None else None
        saved = {n: p.clone() for n, p in params.items()}
        slots = {n: {k: t.clone() for k, t in s.items()} for n, s in opt.state.items()}
        side = torch.cuda.Stream(device=v.device)
        side.wait_stream(torch.cuda.current_stream(v.device))
        with torch.cuda.stream(side):  # warm-up (compilation, cuBLAS workspaces) outside the capture
            body()
        torch.cuda.current_stream(v.device).wait_stream(side)
        for n, p in params.items():  # undo the warm-up's update
            p.copy_(saved[n])
        for n, s in slots.items():
            for k, t in s.items():
                opt.state[n][k].copy_(t)
        if chains0 is not None:
            self.s_chains.copy_(chains0)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # records only: the state restored above is what the first replay reads
            self.s_loss = body()
        self.graph = graph

    def __call__(self, v: torch.Tensor, generator) -> torch.Tensor | None:
        """Train on the batch ``v``: returns the batch's mean loss (a fresh 0-d device tensor), or None
        when ``v`` does not have ``rows`` rows or the update could not be captured (then ``fit`` takes
        the ordinary path)."""
        if self.failed or v.shape[0] != self.rows:
            return None
        opt = self.trainer.optimizer
        if not self.compiled.accepts(v.shape[0]):  # (claims the compiled rows as the ordinary step does)
            return None
        key = randint(2**62, (), generator, v.device)  # the draw the ordinary compiled step makes
        if self._stale():
            try:
                self._build(v, key)
            except Exception as err:  # a capture failure: warn once, train on without the graph
                self.failed = True
                warn_user(f"capturing the training update in a CUDA graph failed ({type(err).__name__}: "
                              f"{err}); training on without it (same maths, slower).", RuntimeWarning)
                if self.s_chains is not None:
                    self.trainer.algorithm_state = ChainState(self.s_chains)
                return None
        chains = self._chains()
        if chains is not None and chains is not self.s_chains:
            self.s_chains.copy_(chains)
            self.trainer.algorithm_state = ChainState(self.s_chains)
        self.s_v.copy_(v)
        self.s_key.copy_(key)
        opt.fill_hyperparameters(self.hyper)
        if self.graph is None:
            loss = self.body()
        else:
            self.graph.replay()
            loss = self.s_loss.clone()
        opt.iterations += 1
        self.replays += 1
        return loss
