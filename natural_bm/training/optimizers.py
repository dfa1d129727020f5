"""Optimisers that *ascend* the log-likelihood with a given gradient.

The gradient of a Boltzmann machine is computed directly (positive minus
negative statistics, see ``natural_bm.training.algorithms``), not by autograd,
so these optimisers take ``params`` and ``grads`` dicts and update the
parameters in place. Hyper-parameters are plain attributes (``opt.lr``,
``opt.momentum``...) so schedulers and ``OptimizerSpy`` can read and set them;
``state_dict``/``load_state_dict`` save and restore everything, slots included.

Parameter groups, torch-style: ``param_groups`` is a list of dicts, each
``{"params": [parameter names], "lr": None, "lr_factor": 1.0, "l1": 0.0,
"l2": 0.0, "max_norm": None, "frozen": False}``. A group's step uses its own ``lr`` (None: the
optimiser's ``lr``, which schedulers set), decayed per update as below,
times ``lr_factor``; its gradient first gains the weight-decay terms
-l1 sign(p) - l2 p; after the step, with ``max_norm`` set, every column of
its (weight) matrices is scaled back to L2 norm ``max_norm`` where it exceeds
it (``regularizers.apply_max_norm``); a frozen group is neither updated nor decayed (its slots
are kept). ``BoltzmannMachine.compile(l1=, l2=, max_norm=)`` makes one group per
parameter, with the decay and max-norm on the weights only; the layer-wise schedules
freeze groups and set their ``lr_factor``, which therefore works for every
optimiser (Adam's step does not scale with the gradient, so scaling the
gradient did nothing). Without groups every gradient is its own group with
the defaults.

Learning-rate decay per update: at iteration t the step uses
``lr / (1 + decay * t)`` (``decay_mode="inverse"``, Keras's) or
``lr / (1 + decay) ** t`` (``"exponential"``: Salakhutdinov & Hinton's DBM
code decays as lr / 1.000015^t, i.e. decay=1.5e-5).
"""

from __future__ import annotations

import contextlib
import copy

import torch

from natural_bm.training.regularizers import apply_max_norm, apply_weight_decay

__all__ = ["Optimizer", "SGD", "Adam", "get_optimizer"]

GROUP_DEFAULTS = {"lr": None, "lr_factor": 1.0, "l1": 0.0, "l2": 0.0, "max_norm": None, "frozen": False}

DECAY_MODES = ("inverse", "exponential")


class Optimizer:
    """Base class. Subclasses list their hyper-parameters in ``hyperparameter_names``."""

    hyperparameter_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.iterations = 0
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.param_groups: list[dict] = []

    def set_param_groups(self, groups: list[dict]) -> None:
        """Set the groups (see the module docstring); missing options take ``GROUP_DEFAULTS``.

        Raises ValueError for an unknown option, a name in two groups or a bad value.
        """
        out, seen = [], set()
        for i, group in enumerate(groups):
            unknown = set(group) - set(GROUP_DEFAULTS) - {"params"}
            if "params" not in group or unknown:
                raise ValueError(f"param_groups[{i}] needs 'params' and may set {sorted(GROUP_DEFAULTS)}; "
                                 f"got {sorted(group)}.")
            g = {**GROUP_DEFAULTS, **copy.deepcopy(group)}
            g["params"] = [str(n) for n in g["params"]]
            twice = seen & set(g["params"])
            if twice:
                raise ValueError(f"parameters {sorted(twice)} are in more than one group.")
            seen |= set(g["params"])
            if g["lr_factor"] < 0 or g["l1"] < 0 or g["l2"] < 0 or (g["lr"] is not None and g["lr"] < 0):
                raise ValueError(f"param_groups[{i}]: lr, lr_factor, l1 and l2 must be >= 0, got {g}.")
            if g["max_norm"] is not None and not float(g["max_norm"]) > 0:
                raise ValueError(f"param_groups[{i}]: max_norm must be None or > 0, got {g['max_norm']!r}.")
            out.append(g)
        self.param_groups = out

    def group_of(self, name: str) -> dict:
        """The group holding parameter ``name`` (ValueError if none does)."""
        for g in self.param_groups:
            if name in g["params"]:
                return g
        raise ValueError(f"no parameter group holds {name!r}; groups hold "
                         f"{[n for g in self.param_groups for n in g['params']]}.")

    decay_mode = "inverse"

    def current_lr(self, lr: float | None = None) -> float:
        """Learning rate of the next step for base rate ``lr`` (default the optimiser's), after the
        per-update decay (see the module docstring)."""
        lr = self.lr if lr is None else lr
        if self.decay_mode == "exponential":
            return lr / (1.0 + self.decay) ** self.iterations
        return lr / (1.0 + self.decay * self.iterations)

    def _set_decay_mode(self, decay_mode: str) -> None:
        if decay_mode not in DECAY_MODES:
            raise ValueError(f"`decay_mode` must be one of {DECAY_MODES}, got {decay_mode!r}.")
        self.decay_mode = decay_mode

    def hyperparameters(self) -> dict[str, float]:
        """Current hyper-parameter values, e.g. {'lr': 0.01, 'momentum': 0.9, ...}."""
        return {name: getattr(self, name) for name in self.hyperparameter_names}

    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        """Move each ``params[name]`` along ``grads[name]`` (in place), group by group: weight decay
        added to the gradient, the group's learning rate, max-norm after the step, frozen groups skipped;
        then count the update (``iterations``)."""
        self.apply_gradients(params, grads)
        self.iterations += 1

    def apply_gradients(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
                        hyper: dict[str, torch.Tensor] | None = None) -> None:
        """``step`` without counting the update. With ``hyper`` (0-d tensors on the parameters' device,
        ``{"lr": base lr, "decay_factor": current_lr(1.0), "momentum": ...}``, see
        ``device_hyperparameters``) the changing scalars are read from those tensors instead of Python
        floats, so a CUDA graph that captures this call stays right as schedules change them; only
        optimisers with ``capturable = True`` accept it."""
        if hyper is not None and not self.capturable:
            raise ValueError(f"{type(self).__name__} cannot take its hyper-parameters as tensors.")
        groups = self.param_groups or [{**GROUP_DEFAULTS, "params": list(grads)}]
        # (the fit loop already runs without autograd: entering no_grad again costs more than the update
        # of a small model's bias)
        with contextlib.nullcontext() if not torch.is_grad_enabled() else torch.no_grad():
            for group in groups:
                if group["frozen"]:
                    continue
                names = [n for n in group["params"] if n in grads]
                if not names:
                    continue
                if group["l1"] or group["l2"]:
                    apply_weight_decay(grads, params, group["l1"], group["l2"], tuple(names))
                if hyper is None:
                    lr = self.current_lr(group["lr"]) * group["lr_factor"]
                else:
                    base = hyper["lr"] if group["lr"] is None else group["lr"]
                    lr = base * hyper["decay_factor"] * group["lr_factor"]
                for name in names:
                    self._update(name, params[name], grads[name], lr, hyper)
                if group["max_norm"] is not None:
                    apply_max_norm(params, float(group["max_norm"]), tuple(names))

    #: whether ``apply_gradients`` takes ``hyper`` tensors (SGD; Adam's bias correction is not written for it)
    capturable = False

    def device_hyperparameters(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """0-d tensors for ``apply_gradients(hyper=...)``, filled with the current values; refresh them
        with ``fill_hyperparameters`` before each captured update."""
        hyper = {name: torch.zeros((), device=device, dtype=dtype) for name in ("lr", "decay_factor", "momentum")}
        self.fill_hyperparameters(hyper)
        return hyper

    def make_slots(self, params: dict[str, torch.Tensor]) -> None:
        """Create the per-parameter slots a step with ``hyper`` updates in place (before a CUDA graph
        captures it, so that the graph never allocates or re-zeroes them). Capturable optimisers define it."""
        raise NotImplementedError(f"{type(self).__name__} is not capturable.")

    def fill_hyperparameters(self, hyper: dict[str, torch.Tensor]) -> None:
        """Write the current lr, per-update decay factor and momentum into ``hyper`` (no host sync)."""
        hyper["lr"].fill_(self.lr)
        hyper["decay_factor"].fill_(self.current_lr(1.0))
        hyper["momentum"].fill_(float(getattr(self, "momentum", 0.0)))

    def _update(self, name: str, p: torch.Tensor, g: torch.Tensor, lr, hyper=None) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Hyper-parameters, iteration count and per-parameter slots (tensors cloned)."""
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "iterations": self.iterations,
            "state": {k: {s: t.clone() for s, t in v.items()} for k, v in self.state.items()},
            "param_groups": copy.deepcopy(self.param_groups),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned; the class must match."""
        if state.get("class") != type(self).__name__:
            raise ValueError(
                f"optimizer state is for {state.get('class')!r}, not {type(self).__name__!r}; "
                "create the matching optimizer before loading."
            )
        for name, value in state["hyperparameters"].items():
            setattr(self, name, value)
        self.iterations = int(state["iterations"])
        self.state = {k: {s: t.clone() for s, t in v.items()} for k, v in state["state"].items()}
        if state.get("param_groups"):  # files before groups: the model's compile() groups stay
            self.set_param_groups(state["param_groups"])

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    """Stochastic gradient ascent with (Nesterov) momentum and learning-rate decay.

    velocity <- momentum * velocity + lr_t * grad;
    param <- param + velocity (or + momentum * velocity + lr_t * grad with Nesterov).
    """

    hyperparameter_names = ("lr", "momentum", "nesterov", "decay", "decay_mode")

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, decay: float = 0.0,
                 decay_mode: str = "inverse"):
        super().__init__()
        if lr < 0 or not 0 <= momentum < 1 or decay < 0:
            raise ValueError(
                f"SGD needs lr >= 0, 0 <= momentum < 1 and decay >= 0; got lr={lr}, "
                f"momentum={momentum}, decay={decay}."
            )
        self.lr, self.momentum, self.nesterov, self.decay = float(lr), float(momentum), bool(nesterov), float(decay)
        self._set_decay_mode(decay_mode)

    capturable = True

    def make_slots(self, params):
        for name, p in params.items():
            slots = self.state.setdefault(name, {})
            if "velocity" not in slots:
                slots["velocity"] = torch.zeros_like(p)

    def _update(self, name, p, g, lr, hyper=None):
        if hyper is not None:  # lr and momentum are device tensors (a captured update)
            self.make_slots({name: p})  # (no-op when made before the capture)
            v = self.state[name]["velocity"]
            step = g * lr
            v.mul_(hyper["momentum"]).add_(step)
            if self.nesterov:
                p.add_(v * hyper["momentum"]).add_(step)
            else:
                p.add_(v)
            return
        if self.momentum == 0.0 and "velocity" not in self.state.get(name, {}):
            p.add_(g, alpha=lr)
            return
        slots = self.state.setdefault(name, {})
        v = slots.get("velocity")
        if v is None:
            v = slots["velocity"] = torch.zeros_like(p)
        v.mul_(self.momentum).add_(g, alpha=lr)
        if self.nesterov:
            p.add_(v, alpha=self.momentum).add_(g, alpha=lr)
        else:
            p.add_(v)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), ascending the gradient, in Keras's form:
    step = lr_t * sqrt(1 - beta_2^t) / (1 - beta_1^t), param += step * m / (sqrt(v) + epsilon)."""

    hyperparameter_names = ("lr", "beta_1", "beta_2", "epsilon", "decay", "decay_mode")

    def __init__(
        self, lr: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, decay: float = 0.0,
        decay_mode: str = "inverse",
    ):
        super().__init__()
        self._set_decay_mode(decay_mode)
        if lr < 0 or not 0 <= beta_1 < 1 or not 0 <= beta_2 < 1 or epsilon <= 0 or decay < 0:
            raise ValueError("Adam needs lr >= 0, 0 <= beta_1, beta_2 < 1, epsilon > 0, decay >= 0.")
        self.lr, self.beta_1, self.beta_2 = float(lr), float(beta_1), float(beta_2)
        self.epsilon, self.decay = float(epsilon), float(decay)

    def _update(self, name, p, g, lr, hyper=None):
        slots = self.state.setdefault(name, {})
        if "m" not in slots:
            slots["m"], slots["v"] = torch.zeros_like(p), torch.zeros_like(p)
        m, v = slots["m"], slots["v"]
        t = self.iterations + 1
        m.mul_(self.beta_1).add_(g, alpha=1 - self.beta_1)
        v.mul_(self.beta_2).addcmul_(g, g, value=1 - self.beta_2)
        step = lr * (1 - self.beta_2**t) ** 0.5 / (1 - self.beta_1**t)
        p.addcdiv_(m, v.sqrt().add_(self.epsilon), value=step)


_OPTIMIZERS = {"sgd": SGD, "adam": Adam}
#: class names a saved training state may name
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in _OPTIMIZERS.values()}


def get_optimizer(optimizer: str | Optimizer, **kwargs) -> Optimizer:
    """An optimizer instance from a name ('sgd', 'adam') or pass one through."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    try:
        return _OPTIMIZERS[str(optimizer).lower()](**kwargs)
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(_OPTIMIZERS)}.") from None
