"""``BoltzmannMachine``: what every model shares: its parameters, the maths contract, and saving and
loading weights. Subclasses hold the parameters and the maths.

Training state lives in a ``natural_bm.training.Trainer``, not in the model. The Keras-style facade
``model.compile(...)``, ``model.fit(...)``, ``model.evaluate(...)`` and ``model.transform(...)`` reaches
the trainer through the package root's public name ``natural_bm.Trainer``, which the root loads on first
use: nothing in ``natural_bm.models`` imports the training layer, and importing a model loads no
training code until it is compiled. ``model.compile`` attaches the trainer as ``model.trainer``.
``model.sample`` and ``model.sample_grid`` reach the samplers the same way (``natural_bm.GibbsSampler``,
``natural_bm.ParallelTempering``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

import natural_bm
from natural_bm.io import load_torch_checked, save_torch_checked
from natural_bm.rng import RandomSource, randint
from natural_bm.validation import as_data_tensor, check_positive_int
from natural_bm.viz.images import image_grid, tile_scale

FILE_FORMAT = "natural_bm"
FILE_VERSION = 2  # 2: a SHA-256 checksum of the contents, verified on load (1: none)
_REGISTRY: dict[str, type] = {}


_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _dtype_from_name(name: str, path="model file") -> torch.dtype:
    dt = getattr(torch, str(name).replace("torch.", ""), None)
    if not isinstance(dt, torch.dtype):
        raise ValueError(f"{path}: unknown dtype {name!r} in the file header.")
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"{path}: dtype {name!r} in the file header is not a floating-point type "
                         f"(natural_bm models are float16, bfloat16, float32 or float64).")
    return dt


#: what the model held before the trainer did (natural_bm 0.1); reading one says where it went
MOVED_TO_TRAINER = frozenset({
    "algorithm", "centering", "sparsity", "max_norm", "l1", "l2", "stop_reason", "diverged", "seed", "jit_compile",
    "cuda_graph", "use_jit_compile", "training_state", "load_training_state", "restore_training_state"})


class BoltzmannMachine(torch.nn.Module):
    """Base class of natural_bm models.

    Subclasses define ``param_names``, ``weight_names`` (decayed by L1/L2),
    ``n_input``, ``get_config``, and the maths used by training and metrics:
    ``free_energy``, ``reconstruction_loss``, ``pseudo_log_likelihood``,
    ``features``. Parameters are ``torch.nn.Parameter`` with
    ``requires_grad=False``: gradients are computed in closed form.
    """

    param_names: tuple[str, ...] = ()
    weight_names: tuple[str, ...] = ("W",)
    #: subclasses whose CD/PCD steps have a compiled form set this (``RBM``)
    supports_compiled_steps = False
    #: subclasses with ``init_from_data(x)`` (visible biases from the data) set this (``LayeredBM``)
    supports_init_from_data = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self) -> None:
        super().__init__()
        self.trainer = None  # the natural_bm.training.Trainer that compile() attaches

    # ------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` (or loading a file with a training state) attached a trainer."""
        return self.trainer is not None

    # the Keras names callbacks use, read through the trainer
    @property
    def optimizer(self):
        """The trainer's optimiser (None before ``compile``)."""
        return None if self.trainer is None else self.trainer.optimizer

    @property
    def history(self):
        """The ``History`` of the last ``fit`` (None before one)."""
        return None if self.trainer is None else self.trainer.history

    @property
    def stop_training(self) -> bool:
        """Set True in a callback to end ``fit`` after the current batch (the trainer's flag)."""
        return False if self.trainer is None else self.trainer.stop_training

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        if self.trainer is None:
            raise ValueError("stop_training needs a compiled model (model.compile(...)): nothing is training.")
        self.trainer.stop_training = bool(value)

    def __getattr__(self, name: str):
        # (reached only when ordinary lookup fails: the parameters, through nn.Module, and missing names)
        if name in MOVED_TO_TRAINER:
            raise AttributeError(f"{type(self).__name__}.{name}: training state lives in the trainer since "
                                 f"natural_bm 0.2; use model.trainer.{name} (after model.compile(...)).")
        return super().__getattr__(name)

    def parameter_dict(self) -> dict[str, torch.Tensor]:
        """{name: tensor} of the trainable parameters (the tensors themselves, not copies)."""
        return {name: getattr(self, name) for name in self.param_names}

    def filters(self) -> torch.Tensor:
        """(n_visible, n_features): the weights of the edges into the visible layer, one column per
        hidden unit touching it (receptive fields for pictures)."""
        raise NotImplementedError

    def unnormalized_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """log p*(v) = -F(v) (nats, (n,)), or a lower bound where F is intractable; ``log_likelihood``
        subtracts log Z."""
        raise NotImplementedError

    def log_prob_importance(self, v: torch.Tensor, n_samples: int = 100, generator=None) -> torch.Tensor:
        """An importance-sampled estimate of log p*(v) (nats, (n,)) from ``n_samples`` draws whose
        expectation is a lower bound on it, at least as tight as ``unnormalized_log_prob``'s; exact where
        F is tractable."""
        raise NotImplementedError

    def n_exact_states(self) -> int:
        """How many states ``log_partition_exact`` enumerates (to decide whether it is feasible)."""
        raise NotImplementedError

    def sweep_multiply_adds(self) -> int:
        """Multiply-adds of one block-Gibbs sweep of one chain (sizes estimators' work, e.g. to choose
        whether to compile)."""
        raise NotImplementedError

    #: the range training data must lie in, (0, 1) for binary visible units, or None for any finite value
    data_range: tuple[float, float] | None = (0.0, 1.0)
    #: whether the visible units are binary (pseudo-likelihood, binarisation and binary likelihoods apply)
    binary_visible = True

    def _check_binary_visible(self, what: str) -> None:
        if not self.binary_visible:
            raise ValueError(f"{what} needs binary (Bernoulli) visible units; this model's visible units are "
                             f"real-valued.")

    def detached_copy(self, device=None, dtype: torch.dtype | None = None) -> "BoltzmannMachine":
        """A new model of the same class and config holding a copy of the parameters (no optimiser,
        algorithm or history), on ``device`` in ``dtype`` (default: this model's)."""
        copy = type(self)(**self.get_config(), device=device or self.device, dtype=dtype or self.dtype)
        with torch.no_grad():
            for name, p in copy.parameter_dict().items():
                p.copy_(getattr(self, name))
        return copy

    def non_finite_parameters(self) -> list[str]:
        """Names of the parameters holding NaN or inf (empty for a healthy model)."""
        return [name for name, p in self.parameter_dict().items() if not bool(torch.isfinite(p).all())]

    def check_finite(self, where: str = "this estimate") -> None:
        """Raise ValueError naming the parameters that hold NaN or inf."""
        bad = self.non_finite_parameters()
        if bad:
            raise ValueError(f"{where} needs finite parameters, but {type(self).__name__} parameter(s) {bad} hold "
                             f"NaN or inf (training diverged); lower the learning rate or load an earlier "
                             f"checkpoint.")

    def num_trainable_layers(self) -> int:
        """Number of layers a layer-wise schedule steps through (hidden layers)."""
        return 1

    def layer_parameter_names(self, layer: int) -> list[str]:
        """Parameters of schedulable layer ``layer`` (0-based); all of them for a one-layer model."""
        if layer != 0:
            raise ValueError(f"{type(self).__name__} has one schedulable layer, got layer={layer}.")
        return list(self.param_names)

    def monitor_free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """Free energy used by the fit loop's monitoring (``free_energy_gap``, ``evaluate``)."""
        return self.free_energy(v)

    def pseudo_log_likelihood(self, v: torch.Tensor, generator=None) -> torch.Tensor:
        """Stochastic pseudo-log-likelihood of each row: (n,) nats.

        The pseudo-likelihood ``sum_i log p(v_i | v_-i)`` is estimated, as in
        scikit-learn's ``BernoulliRBM.score_samples``, from one visible unit i
        drawn uniformly per row: n_visible * log sigmoid(F(v~) - F(v)), where
        v~ is v with unit i flipped (``v_i -> 1 - v_i``) and F is
        ``monitor_free_energy`` (exact for RBMs; the variational free energy
        for DBMs of more than two layers, which makes it approximate). It is
        unbiased for the pseudo-likelihood; its noise averages out over many rows.
        """
        self._check_binary_visible("pseudo-likelihood")

        idx = randint(v.shape[1], (v.shape[0],), generator, v.device)
        rows = torch.arange(v.shape[0], device=v.device)
        v_flip = v.clone()
        v_flip[rows, idx] = 1 - v_flip[rows, idx]
        f = self.monitor_free_energy
        return v.shape[1] * F.logsigmoid(f(v_flip) - f(v))

    # ------------------------------------------------------------ training (the Keras-style facade)
    def compile(self, optimizer="sgd", algorithm="cd", l1: float = 0.0, l2: float = 0.0,
                jit_compile: bool | str = "auto", centering=None, max_norm: float | None = None, sparsity=None,
                cuda_graph: bool = True, **algorithm_kwargs) -> BoltzmannMachine:
        """Choose how ``fit`` trains: attach a ``natural_bm.training.Trainer`` as ``self.trainer``.

        Args:
            optimizer: ``"sgd"`` (lr 0.01), ``"adam"`` or an ``Optimizer`` instance
                (``natural_bm.training.SGD(lr, momentum, nesterov, decay)``, ``Adam``).
            algorithm: ``"cd"``, ``"pcd"``, ``"exact"``, ``"mfpcd"``, ``"pt"`` or an ``Algorithm`` instance.
            l1, l2: weight-decay coefficients on the weights (not biases).
            jit_compile: run CD/PCD steps of an RBM as one ``torch.compile``'d graph; ``"auto"``
                (default) on CUDA devices only.
            centering: train the centred machine (True, a dict such as ``{"rate": 0.01, "target":
                "data"}``, or a ``Centering``); None (default) trains the plain parameters.
            max_norm: bound on the L2 norm of each unit's incoming weights; None (default): none.
            sparsity: sparsity targets for hidden layers (a dict such as ``{"target": 0.1, "cost": 1e-3}``
                or a ``Sparsity``); None (default): none.
            cuda_graph: on a CUDA device, replay each whole update from one CUDA graph where possible.
            **algorithm_kwargs: the algorithm's settings, e.g. ``k=5``, ``n_chains=100``.

        The arguments are the ``Trainer``'s; its docstring gives each in full. Returns ``self``.
        """
        self.trainer = natural_bm.Trainer(self, optimizer, algorithm, l1=l1, l2=l2, jit_compile=jit_compile,
                                          centering=centering, max_norm=max_norm, sparsity=sparsity,
                                          cuda_graph=cuda_graph, **algorithm_kwargs)
        return self

    def fit(self, x, batch_size: int = 100, epochs: int = 1, validation_data=None, callbacks=None,
            shuffle: bool = True, verbose: int | str = "auto", initial_epoch: int = 0, seed: int | None = None,
            binarize: bool = False, y=None, pseudo_likelihood: bool = True):
        """Train for ``epochs - initial_epoch`` epochs and return a ``History`` (compiles with the
        defaults, SGD and CD-1, if ``compile`` was not called).

        Args:
            x: (n_samples, n_input) array or tensor with values in [0, 1] (any finite values for
                Gaussian visible units); a ``numpy.memmap`` is read a batch at a time.
            batch_size: rows per gradient step.
            epochs: index of the last epoch + 1 (Keras convention).
            validation_data: (n_val, n_input) data (any array-like), or a tuple whose first item is it.
            callbacks: list of ``Callback``; ``BaseLogger`` and ``History`` are added.
            shuffle: reshuffle the rows every epoch.
            verbose: 0 silent, 1 progress bar, 2 one line per epoch, ``"auto"`` (default) 1 on a
                terminal and 2 otherwise (a log file gets no bars).
            initial_epoch: epoch to start at (to resume a run).
            seed: seed of all random numbers of the run (shuffling, sampling). Two CPU runs with the
                same seed give bit-identical weights; a run resumed at ``initial_epoch`` from a
                checkpoint saved at the end of the previous epoch continues exactly as the
                uninterrupted run.
            binarize: treat ``x`` as probabilities and train on a fresh stochastic binarisation of
                every minibatch (v ~ Bernoulli(x), as in Salakhutdinov's code), drawn from the run's
                seeded stream. Monitoring (``pll``, validation) uses ``x`` and ``validation_data`` as given.
            y: class labels of ``x`` (integers (n,) or one-hot (n, n_classes)), clamped on the label
                layer (the last layer, softmax units in one group) in the positive phase; needs
                ``"mfpcd"`` or ``"pt"``. With ``validation_data=(x_val, y_val)`` each epoch logs
                ``val_accuracy``.
            pseudo_likelihood: log ``pll``, the pseudo-log-likelihood of the monitoring rows, at every
                epoch's end (binary visible units). False skips it where nothing reads it: on small data
                at small batches it is a noticeable part of an epoch (``RBMTransformer`` always skips it;
                its verbose lines score the data themselves). The training is bit-identical either way;
                ``val_pll`` with ``validation_data`` is still logged, with other randomly flipped units
                (the epoch's stream no longer makes the pll's draws first).

        The log keys are documented in ``natural_bm.training.fit``.
        """
        if self.trainer is None:
            self.compile()
        return self.trainer.fit(x, batch_size, epochs, validation_data, callbacks, shuffle, verbose,
                                initial_epoch, seed, binarize, y, pseudo_likelihood)

    def evaluate(self, x, batch_size: int = 100, callbacks=None, seed: int | None = None) -> dict[str, float]:
        """Mean metrics of ``x`` (nats per image), firing the test hooks.

        Returns ``{"loss": reconstruction cross-entropy, "pll": pseudo-log-likelihood,
        "free_energy": mean free energy}``.
        """
        return natural_bm.Trainer.evaluate(self, x, batch_size, callbacks, seed)

    def transform(self, x, batch_size: int = 1000, callbacks=None):
        """Hidden features p(h = 1 | v) of ``x``, firing the predict hooks.

        Returns a tensor if ``x`` is one, else a numpy array: (n_samples, n_features).
        """
        return natural_bm.Trainer.transform(self, x, batch_size, callbacks)

    # ------------------------------------------------------------ samples (a one-line facade over the samplers)
    def sample(self, n: int = 100, steps: int = 1000, sampler: str = "gibbs", seed: int | None = 0, init=None,
               beta: float = 1.0, means: bool = False) -> torch.Tensor:
        """``n`` samples of the visible layer after ``steps`` sweeps of a Markov chain: (n, n_visible).

        Args:
            n: how many chains (one sample each).
            steps: sweeps of every chain (Gibbs sweeps; parallel-tempering steps for ``"pt"``).
            sampler: ``"gibbs"`` (block Gibbs, ``natural_bm.sampling.GibbsSampler``) or ``"pt"``
                (``natural_bm.sampling.ParallelTempering`` with a ladder that tunes itself to swap rates of
                0.2 to 0.3: chains that cross between modes where Gibbs chains stay in one).
            seed: seed of the chains' random numbers (None: fresh).
            init: (n, n_visible) rows to start from (e.g. data); default: the visible units' states at zero
                input (uniform noise for binary units).
            beta: inverse temperature of the sampled distribution (1: the model itself; ``"gibbs"`` only).
            means: return E[v | the other layers] of the last sweep (smoother pictures) instead of states.
        """
        n, steps = check_positive_int(n, "n"), check_positive_int(steps, "steps", minimum=0)
        if sampler not in ("gibbs", "pt"):
            raise ValueError(f"`sampler` must be 'gibbs' or 'pt', got {sampler!r}.")
        gen = RandomSource(seed, self.device)
        with torch.no_grad():
            if init is None:
                zero = torch.zeros(n, self.n_visible, device=self.device, dtype=self.dtype)
                v = self.units[0].sample(zero, 1.0, gen)
            else:
                v = as_data_tensor(init, "init", self.n_visible, device=self.device, dtype=self.dtype,
                                   value_range=self.data_range)
                v = self.units[0].states_from_data(v[:n], gen)
            if sampler == "gibbs":
                gibbs = natural_bm.GibbsSampler(self, beta)
                states = gibbs.run(gibbs.init_chains(v, gen), steps, gen)
            else:
                if beta != 1.0:
                    raise ValueError("sampler='pt' samples the model itself (beta = 1); use 'gibbs' for a tempered "
                                     "distribution.")
                pt = natural_bm.ParallelTempering(self, adaptive=True)
                pt.init_chains(v, gen)
                states = pt.run(steps, gen)
            return self.prob_layer(0, states) if means else states[0]

    def sample_grid(self, path: str | os.PathLike, n: int = 100, steps: int = 1000, sampler: str = "gibbs",
                    seed: int | None = 0, image_shape: tuple[int, int] | None = None, init=None,
                    scale: int | str = "auto") -> Path:
        """Draw ``n`` samples (``sample(..., means=True)``) and save them as a grid of images at ``path``
        (.png or .jpg); ``image_shape`` (height, width) defaults to the square of n_visible ((28, 28) for
        MNIST); ``scale`` enlarges tiles by whole pixels (``"auto"``: small tiles to at least 16 pixels a
        side, ``viz.images.tile_scale``). Returns the path."""
        if image_shape is None:
            side = int(round(self.n_visible ** 0.5))
            if side * side != self.n_visible:
                raise ValueError(f"{self.n_visible} visible units are not a square image; give image_shape="
                                 f"(height, width).")
            image_shape = (side, side)
        x = self.sample(n, steps, sampler, seed, init, means=True)
        image_grid(x.cpu(), tuple(image_shape), normalize=not self.binary_visible,  # real values: rescaled
                   scale=tile_scale(tuple(image_shape), scale), path=path)
        return Path(path)

    # ------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike, include_optimizer: bool = True) -> Path:
        """Write weights and config (and, with ``include_optimizer``, the trainer's ``state_dict``) to
        ``path`` atomically.

        The file is a ``torch.save`` archive of plain dicts and tensors, so it
        loads with ``torch.load(path, weights_only=True)``.
        """
        payload = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "class": type(self).__name__,
            "config": self.get_config(),
            "dtype": str(self.dtype).replace("torch.", ""),
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.parameter_dict().items()},
            "training": self.trainer.state_dict() if include_optimizer and self.trainer is not None else None,
        }
        return save_torch_checked(payload, path)

    @staticmethod
    def _read(path: str | os.PathLike) -> dict:
        """The verified payload of a model file; ValueError (one line, naming the file) if it is not intact."""
        payload = load_torch_checked(path, "model file", FILE_FORMAT, require_checksum=False)
        version = payload.get("version")
        if not isinstance(version, int) or version > FILE_VERSION:
            raise ValueError(f"{path}: model file version {version!r} is not one this natural_bm reads "
                             f"(1 to {FILE_VERSION}); upgrade natural_bm.")
        if version >= 2 and "checksum" not in payload:
            raise ValueError(f"{path} has no checksum; it is damaged or was not written by natural_bm.")
        for key in ("class", "config", "dtype", "state_dict"):
            if key not in payload:
                raise ValueError(f"{path} is not a complete natural_bm model file (no {key!r} entry).")
        if not isinstance(payload["config"], dict) or not isinstance(payload["state_dict"], dict):
            raise ValueError(f"{path} is not a complete natural_bm model file (bad 'config' or 'state_dict').")
        _dtype_from_name(payload["dtype"], path)
        return payload

    def _load_payload(self, payload: dict, path) -> None:
        state = payload["state_dict"]
        own = self.parameter_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"{path} lacks parameters {missing}.")
        for name, tensor in own.items():
            if not isinstance(state[name], torch.Tensor) or not state[name].is_floating_point():
                raise ValueError(f"{path}: parameter {name!r} is not a floating-point tensor; the file is damaged.")
            if tuple(state[name].shape) != tuple(tensor.shape):
                raise ValueError(
                    f"{path}: parameter {name!r} has shape {tuple(state[name].shape)} but the model "
                    f"expects {tuple(tensor.shape)}; build the model with the saved config "
                    f"({payload.get('config')}) or load with {payload.get('class')}.load(path)."
                )
        with torch.no_grad():
            for name, tensor in own.items():
                tensor.copy_(state[name].to(device=tensor.device, dtype=tensor.dtype))
        if payload.get("training"):
            self.trainer = natural_bm.Trainer.from_state_dict(self, payload["training"], path)

    def warm_start(self, path: str | os.PathLike) -> "BoltzmannMachine":
        """Start from the parameters (weights, biases, unit parameters) of the model file at ``path``.

        Unlike ``load_weights``, the file's training state is not read: the
        optimiser, the persistent chains and the centering offsets stay as this
        model's ``compile`` made them, so training continues the saved model
        under new settings (a longer run, another learning-rate schedule).
        The file must hold the same class and architecture: every
        ``get_config()`` entry but ``init`` and ``weight_scale`` equal.
        ValueError naming the file otherwise. Returns ``self``.
        """
        payload = self._read(path)
        if payload["class"] != type(self).__name__:
            raise ValueError(f"{path} holds a {payload['class']}, not a {type(self).__name__}.")
        free = ("init", "weight_scale")
        saved = {k: v for k, v in payload["config"].items() if k not in free}
        own = {k: v for k, v in self.get_config().items() if k not in free}
        if saved != own:
            raise ValueError(f"{path} holds a {payload['class']} with {saved}, but this model has {own}; "
                             f"build the model with the saved architecture.")
        self._load_payload(payload | {"training": None}, path)
        return self

    def load_weights(self, path: str | os.PathLike) -> "BoltzmannMachine":
        """Load parameters (and training state, if saved) from ``path`` into this model."""
        self._load_payload(self._read(path), path)
        return self

    @classmethod
    def load(cls, path: str | os.PathLike, device=None, dtype: torch.dtype | None = None) -> "BoltzmannMachine":
        """Build the model saved at ``path`` (on ``device``; saved dtype unless ``dtype``)."""
        payload = cls._read(path)
        name = payload.get("class")
        model_cls = _REGISTRY.get(name)
        if model_cls is None:
            raise ValueError(f"{path} holds an unknown model class {name!r}.")
        if cls is not BoltzmannMachine and not issubclass(model_cls, cls):
            raise ValueError(f"{path} holds a {name}, not a {cls.__name__}; use {name}.load.")
        dt = dtype or _dtype_from_name(payload["dtype"], path)
        model = model_cls(**payload["config"], device=device, dtype=dt)
        model._load_payload(payload, path)
        return model
