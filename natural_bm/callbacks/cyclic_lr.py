"""``CyclicLR``: cyclical learning rates (Smith 2017), updated every batch."""

from __future__ import annotations

import math

from natural_bm.callbacks.callback import Callback


class CyclicLR(Callback):
    """Cycles ``optimizer.lr`` between ``base_lr`` and ``max_lr`` every ``2 * step_size`` batches.

    At iteration t: cycle = floor(1 + t / (2 step_size)), x = ``|t / step_size - 2 cycle + 1|``,
    lr = base_lr + (max_lr - base_lr) max(0, 1 - x) scale, with scale = 1
    (``'triangular'``), 1 / 2^(cycle - 1) (``'triangular2'``) or gamma^t
    (``'exp_range'``), or ``scale_fn(cycle)`` / ``scale_fn(t)`` per ``scale_mode``.
    ``history`` records ``lr`` and ``iterations`` for every batch.
    """

    def __init__(self, base_lr: float = 0.001, max_lr: float = 0.006, step_size: float = 2000.0,
                 mode: str = "triangular", gamma: float = 1.0, scale_fn=None, scale_mode: str = "cycle") -> None:
        super().__init__()
        if mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"CyclicLR mode must be triangular, triangular2 or exp_range, got {mode!r}.")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}.")
        self.base_lr, self.max_lr, self.step_size = float(base_lr), float(max_lr), float(step_size)
        self.mode, self.gamma = mode, float(gamma)
        if scale_fn is None:
            self.scale_fn = {
                "triangular": lambda x: 1.0,
                "triangular2": lambda x: 1 / (2.0 ** (x - 1)),
                "exp_range": lambda x: self.gamma**x,
            }[mode]
            self.scale_mode = "iterations" if mode == "exp_range" else "cycle"
        else:
            self.scale_fn, self.scale_mode = scale_fn, scale_mode
        self.clr_iterations = 0
        self.history: dict[str, list[float]] = {"lr": [], "iterations": []}

    def clr(self) -> float:
        t = self.clr_iterations
        cycle = math.floor(1 + t / (2 * self.step_size))
        x = abs(t / self.step_size - 2 * cycle + 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else t)
        return self.base_lr + (self.max_lr - self.base_lr) * max(0.0, 1 - x) * scale

    def on_train_begin(self, logs=None):
        self.model.optimizer.lr = self.clr()

    def state_dict(self) -> dict:
        return {"clr_iterations": self.clr_iterations,
                "history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.clr_iterations = int(state["clr_iterations"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.model.optimizer.lr = self.clr()

    batch_logs_on_device = True  # counts batches; reads no logged value

    def on_train_batch_end(self, batch, logs=None):
        self.clr_iterations += 1
        self.history["lr"].append(float(self.model.optimizer.lr))
        self.history["iterations"].append(self.clr_iterations)
        self.model.optimizer.lr = self.clr()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(self.model.optimizer.lr)
