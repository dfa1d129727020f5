"""``Trainer``: the state of one model's training run, apart from the model.

A model holds its parameters and maths; a trainer holds how it is trained
(optimiser, algorithm and the algorithm's state such as persistent chains,
centering offsets, sparsity targets, weight decay, max-norm, the run's seed and
flags) and runs the fit loop (``natural_bm.training.fit``)::

    trainer = Trainer(rbm, SGD(0.01, momentum=0.9), "pcd", k=1, n_chains=100, l2=1e-4)
    history = trainer.fit(x, batch_size=100, epochs=10, seed=0)
    trainer.state_dict()        # what a checkpoint holds to resume bit-identically

``model.compile(...)`` builds one and attaches it to the model as
``model.trainer`` (the Keras-style facade); ``model.fit(...)`` calls its ``fit``;
``model.save`` writes its ``state_dict`` beside the weights and ``load_model``
rebuilds it (``Trainer.from_state_dict``).
"""

from __future__ import annotations

from typing import Any

from natural_bm.training import optimizers as optimizer_classes
from natural_bm.training.algorithms import Algorithm
from natural_bm.training.centering import Centering, get_centering
from natural_bm.training.evaluation import evaluate, transform
from natural_bm.training.fit import fit
from natural_bm.training.optimizers import Optimizer, get_optimizer
from natural_bm.training.registry import algorithm_class, get_algorithm
from natural_bm.training.sparsity import Sparsity, get_sparsity
from natural_bm.validation import check_keywords, keyword_names

__all__ = ["Trainer"]


class Trainer:
    """How ``model`` is trained, and the state its training carries between batches, epochs and files.

    Args:
        model: the Boltzmann machine to train (a ``BoltzmannMachine``).
        optimizer: ``"sgd"`` (lr 0.01), ``"adam"`` or an ``Optimizer`` instance
            (``natural_bm.training.SGD(lr, momentum, nesterov, decay)``, ``Adam``).
        algorithm: ``"cd"``, ``"pcd"``, ``"exact"``, ``"mfpcd"``, ``"pt"`` or an ``Algorithm`` instance.
        l1, l2: weight-decay coefficients on the weights (not biases). They go into the optimiser's
            parameter groups: one group per parameter, unless the optimiser already has groups (then
            parameters in none get their own).
        jit_compile: run CD/PCD steps of an RBM as one ``torch.compile``'d graph
            (``natural_bm.training.rbm_steps``). ``"auto"`` (default): on a CUDA device; not on the CPU,
            where the products dominate. ``True``/``False`` force it. Compiled steps draw counter-based
            uniforms, so a seed gives a different (equally valid) run than with ``False``.
        centering: train the centred machine (Melchior, Fischer & Wiskott 2016;
            ``natural_bm.training.centering``): True, a dict such as ``{"rate": 0.01, "target": "data"}``,
            or a ``Centering``; None (default) trains the plain parameters. The model's parameters stay
            uncentred either way.
        max_norm: after every update, scale each column of every weight matrix (the incoming weights of
            one unit of the upper layer) back to this L2 norm where it exceeds it; None (default): none.
        sparsity: sparsity targets for hidden layers (``natural_bm.training.sparsity``): a dict such as
            ``{"target": 0.1, "cost": 1e-3, "damping": 0.9}`` or a ``Sparsity``; None (default): none.
        cuda_graph: on a CUDA device, replay each whole update (compiled CD/PCD step and the SGD step)
            from one CUDA graph where the run allows it (``training.graphed_update``). Default True.
        **algorithm_settings: the algorithm's settings, e.g. ``k=5``, ``n_chains=100`` (a name it does
            not take is refused, naming those it takes).

    Attributes:
        algorithm_state: the algorithm's state (persistent chains...; None before the first ``fit``
            of an algorithm that has one).
        history: the ``History`` of the last ``fit``.
        stop_training: set True by a callback to end ``fit`` after the current batch.
        stop_reason: why ``fit`` stopped before its last epoch (set by callbacks), else None.
        diverged: the weights left the finite range (``TerminateOnNaN``).
        seed: the seed of the last ``fit``.
    """

    def __init__(self, model, optimizer: str | Optimizer = "sgd", algorithm: str | Algorithm = "cd",
                 l1: float = 0.0, l2: float = 0.0, jit_compile: bool | str = "auto", centering=None,
                 max_norm: float | None = None, sparsity=None, cuda_graph: bool = True,
                 **algorithm_settings) -> None:
        if l1 < 0 or l2 < 0:
            raise ValueError(f"`l1` and `l2` must be >= 0, got l1={l1}, l2={l2}.")
        if max_norm is not None and not float(max_norm) > 0:
            raise ValueError(f"`max_norm` must be None or > 0, got {max_norm!r}.")
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"`jit_compile` must be True, False or 'auto', got {jit_compile!r}.")
        if algorithm_settings and not isinstance(algorithm, Algorithm):  # a typo names compile's keywords too
            own = [n for n in keyword_names(Trainer.__init__) if n not in ("model", "optimizer", "algorithm")]
            settings = keyword_names(algorithm_class(algorithm).__init__)
            check_keywords(algorithm_settings, settings + own, f"compile() with the {str(algorithm)!r} algorithm")
        self.model = model
        self.optimizer = get_optimizer(optimizer)
        self.algorithm = get_algorithm(algorithm, **algorithm_settings)
        self.algorithm.check_model(model)
        self.centering: Centering | None = get_centering(centering)
        if self.centering is not None:
            self.centering.check_model(model)
        self.sparsity: Sparsity | None = get_sparsity(sparsity)
        if self.sparsity is not None:
            self.sparsity.check_model(model)
        self.l1, self.l2 = float(l1), float(l2)
        self.max_norm = None if max_norm is None else float(max_norm)
        self.jit_compile = jit_compile
        self.cuda_graph = bool(cuda_graph)
        self.algorithm_state: Any = None
        self.history = None
        self.stop_training = False
        self.stop_reason: str | None = None
        self.diverged = False
        self.seed: int | None = None
        self.sharded_by = None  # the DataParallel whose rank share ``algorithm_state`` holds, during a fit
        self.set_default_param_groups()

    # ------------------------------------------------------------ settings
    def set_default_param_groups(self) -> None:
        """Give every parameter not in a group of the optimiser its own group, with ``l1``/``l2`` and
        ``max_norm`` on the weights; refuse groups naming parameters the model does not have."""
        model = self.model
        groups = list(self.optimizer.param_groups)
        known = {n for g in groups for n in g["params"]}
        unknown = known - set(model.param_names)
        if unknown:
            raise ValueError(f"the optimizer's param_groups name {sorted(unknown)}, which {type(model).__name__} "
                             f"does not have; its parameters are {list(model.param_names)}.")
        for name in model.param_names:
            if name not in known:
                weight = name in model.weight_names
                groups.append({"params": [name], "l1": self.l1 if weight else 0.0,
                               "l2": self.l2 if weight else 0.0, "max_norm": self.max_norm if weight else None})
        self.optimizer.set_param_groups(groups)

    def use_jit_compile(self) -> bool:
        """Whether ``fit`` runs compiled steps, resolving ``jit_compile="auto"`` (on CUDA devices)."""
        if self.jit_compile == "auto":
            return self.model.device.type == "cuda"
        return bool(self.jit_compile)

    def runs_compiled_steps(self) -> bool:
        """Whether this model and algorithm have compiled steps and ``jit_compile`` turns them on."""
        return self.model.supports_compiled_steps and self.algorithm.has_compiled_step and self.use_jit_compile()

    def global_algorithm_state(self):
        """The algorithm's state with every rank's share (all-gathered, a collective, while a data-parallel
        fit has it sharded)."""
        if self.sharded_by is None:
            return self.algorithm_state
        return self.sharded_by.global_state(self.algorithm_state)

    def model_chains(self):
        """The persistent chains that sample the model (visible rows or a list of layer states), for reverse
        AIS to start from; None for algorithms without persistent chains or before the first ``fit``."""
        return self.algorithm.model_chains(self.global_algorithm_state())

    # ------------------------------------------------------------ running
    def fit(self, x, batch_size: int = 100, epochs: int = 1, validation_data=None, callbacks=None,
            shuffle: bool = True, verbose: int | str = "auto", initial_epoch: int = 0, seed: int | None = None,
            binarize: bool = False, y=None, pseudo_likelihood: bool = True):
        """Train the model; arguments and logs as ``BoltzmannMachine.fit``. Returns a ``History``."""
        return fit(self, x, batch_size, epochs, validation_data, callbacks, shuffle, verbose, initial_epoch, seed,
                   binarize, y, pseudo_likelihood)

    @staticmethod
    def evaluate(model, x, batch_size: int = 100, callbacks=None, seed: int | None = None) -> dict[str, float]:
        """Mean metrics of ``x`` (nats per image), firing the test hooks; see ``BoltzmannMachine.evaluate``."""
        return evaluate(model, x, batch_size, callbacks, seed)

    @staticmethod
    def transform(model, x, batch_size: int = 1000, callbacks=None):
        """Hidden features of ``x``, firing the predict hooks; see ``BoltzmannMachine.transform``."""
        return transform(model, x, batch_size, callbacks)

    # ------------------------------------------------------------ saving
    def state_dict(self) -> dict:
        """Optimiser, algorithm state (persistent chains), centering, sparsity, decay settings, seed and
        flags: what a checkpoint holds so that a resumed run continues bit-identically."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "algorithm": self.algorithm.state_dict(self.global_algorithm_state()),
            "centering": None if self.centering is None else self.centering.state_dict(),
            "sparsity": None if self.sparsity is None else self.sparsity.state_dict(),
            "max_norm": self.max_norm,
            "l1": self.l1,
            "l2": self.l2,
            "seed": self.seed,
            "jit_compile": self.jit_compile,
            "cuda_graph": self.cuda_graph,
        }

    @classmethod
    def from_state_dict(cls, model, state: dict, source="the training state") -> Trainer:
        """The trainer ``state_dict`` described, for ``model``; every error a one-line ValueError naming
        ``source`` (the file it came from)."""
        try:
            return cls._from_state_dict(model, state)
        except (KeyError, TypeError) as err:
            raise ValueError(f"{source}: the saved training state is incomplete (missing {err}).") from None
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    @classmethod
    def _from_state_dict(cls, model, state: dict) -> Trainer:
        try:
            name = state["optimizer"]["class"]
        except (KeyError, TypeError):
            raise ValueError("the saved training state has no optimizer class; the file is damaged.") from None
        opt_cls = optimizer_classes.OPTIMIZER_CLASSES.get(str(name))
        if opt_cls is None:
            raise ValueError(f"the saved training state names an unknown optimizer class {name!r}; "
                             f"natural_bm has {sorted(optimizer_classes.OPTIMIZER_CLASSES)}.")
        optimizer = opt_cls()
        optimizer.load_state_dict(state["optimizer"])
        settings = dict(state["algorithm"]["config"])
        algorithm = get_algorithm(settings.pop("name"), **settings)
        trainer = cls(model, optimizer, algorithm, l1=state["l1"], l2=state["l2"],
                      jit_compile=state.get("jit_compile", "auto"), max_norm=state.get("max_norm"),
                      cuda_graph=bool(state.get("cuda_graph", True)))
        trainer.algorithm_state = algorithm.load_state(model, state["algorithm"])
        if state.get("centering") is not None:  # (files before centering have no entry)
            trainer.centering = Centering()
            trainer.centering.load_state_dict(state["centering"])
        if state.get("sparsity") is not None:  # (files before sparsity targets have no entry)
            trainer.sparsity = Sparsity()
            trainer.sparsity.load_state_dict(state["sparsity"])
        trainer.seed = state.get("seed")
        return trainer
