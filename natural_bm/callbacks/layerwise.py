"""Layer-wise training schedules (after whetstone's sharpeners).

A schedule says, epoch by epoch, which layers of a model train. "Layer" i
(0-based) is the i-th hidden layer with the parameters below it: for an RBM
layer 0 is the whole model; for a DBM layer i holds the weights of edges
into hidden layer i + 1 from lower layers and its bias (layer 0 also the
visible bias). See ``BoltzmannMachine.layer_parameter_names``.

Each layer i gets a window [start_i, end_i) of epochs. Inside its window,
with ``bottom_up=True`` only layer i trains (one layer at a time, from the
bottom); with ``bottom_up=False`` all layers train together. Outside every
window (before the first, in intermissions, after the last) all layers
train. Optionally the layer in its window has its learning rate multiplied
by ``lr_factor``. Both act on the optimiser's parameter groups (``frozen``,
``lr_factor``; each parameter must be in a group of its own layer), so they
work with every optimiser. Frozen parameters are neither updated nor
decayed; the optimiser state is kept.
"""

from __future__ import annotations

from natural_bm.callbacks.callback import Callback


def gen_schedule(num_layers: int, start: int, duration: int, intermission: int = 0) -> list[tuple[int, int]]:
    """Windows [(start_i, end_i)] with start_i = start + i (duration + intermission), end_i = start_i + duration."""
    if num_layers < 1 or duration < 1 or start < 0 or intermission < 0:
        raise ValueError("gen_schedule needs num_layers >= 1, duration >= 1, start >= 0 and intermission >= 0.")
    return [(start + i * (duration + intermission), start + i * (duration + intermission) + duration)
            for i in range(num_layers)]


class _Layerwise(Callback):
    def __init__(self, bottom_up: bool = True, lr_factor: float = 1.0) -> None:
        super().__init__()
        self.bottom_up = bottom_up
        self.lr_factor = float(lr_factor)
        self.active_layer: int | None = None
        self.log: list[tuple[int, int | None]] = []

    def num_layers(self) -> int:
        return self.model.num_trainable_layers()

    def apply(self, layer: int | None) -> None:
        """Make ``layer`` the one in its window (None: all layers train normally)."""
        m = self.model
        self.active_layer = layer
        names = set(m.layer_parameter_names(layer)) if layer is not None else set(m.param_names)
        for group in m.optimizer.param_groups:
            inside = set(group["params"]) & names
            if inside and inside != set(group["params"]):
                raise ValueError(f"parameter group {group['params']} straddles layer {layer}; give each layer's "
                                 f"parameters groups of their own for a layer-wise schedule.")
            group["frozen"] = bool(layer is not None and self.bottom_up and not inside)
            group["lr_factor"] = self.lr_factor if (layer is not None and inside) else 1.0

    def on_train_end(self, logs=None):
        self.apply(None)

    _state_attrs: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        state = {"active_layer": self.active_layer, "log": [list(e) for e in self.log]}
        state.update({a: getattr(self, a) for a in self._state_attrs})
        return state

    def load_state_dict(self, state: dict) -> None:
        self.log = [tuple(e) for e in state["log"]]
        for a in self._state_attrs:
            setattr(self, a, state[a])
        self.apply(state["active_layer"])  # frozen groups and learning-rate factors as they were

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["active_layer"] = float(-1 if self.active_layer is None else self.active_layer)


class ScheduledLayerwise(_Layerwise):
    """Follows an explicit ``schedule`` [(start, end), ...] (one window per layer), or
    ``gen_schedule(num_layers, start, duration, intermission)`` (num_layers
    defaults to the model's)."""

    def __init__(self, schedule=None, num_layers=None, start=None, duration=None, intermission=None,
                 bottom_up: bool = True, lr_factor: float = 1.0) -> None:
        super().__init__(bottom_up, lr_factor)
        if schedule is None and (start is None or duration is None):
            raise ValueError("ScheduledLayerwise needs `schedule` or `start` and `duration`.")
        self.schedule = [tuple(w) for w in schedule] if schedule is not None else None
        self._gen = (num_layers, start, duration, intermission or 0)

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.schedule is not None:
            self.schedule = [tuple(w) for w in self.schedule]

    _state_attrs = ("schedule",)

    def on_train_begin(self, logs=None):
        if self.schedule is None:
            n, start, duration, intermission = self._gen
            self.schedule = gen_schedule(n or self.num_layers(), start, duration, intermission)
        if len(self.schedule) > self.num_layers():
            raise ValueError(f"schedule has {len(self.schedule)} windows but the model has {self.num_layers()} layers.")

    def layer_at(self, epoch: int) -> int | None:
        for i, (s, e) in enumerate(self.schedule):
            if s <= epoch < e:
                return i
        return None

    def on_epoch_begin(self, epoch, logs=None):
        self.apply(self.layer_at(epoch))
        self.log.append((epoch, self.active_layer))


class SimpleLayerwise(ScheduledLayerwise):
    """Steps through the layers from ``start_epoch``, ``steps`` epochs each
    (or ``steps`` batches each with ``epochs=False``)."""

    def __init__(self, start_epoch: int, steps: int = 4, epochs: bool = True, bottom_up: bool = True,
                 lr_factor: float = 1.0) -> None:
        super().__init__(start=start_epoch, duration=steps, intermission=0, bottom_up=bottom_up, lr_factor=lr_factor)
        self.by_epochs = epochs
        self.global_batch = 0

    _state_attrs = ("schedule", "global_batch")

    def on_epoch_begin(self, epoch, logs=None):
        if self.by_epochs:
            super().on_epoch_begin(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        if not self.by_epochs:
            self.apply(self.layer_at(self.global_batch))
            self.log.append((self.global_batch, self.active_layer))
        self.global_batch += 1


class AdaptiveLayerwise(_Layerwise):
    """Moves to the next layer when the loss stops improving significantly.

    After ``min_init_epochs`` epochs of normal training, layer 0 starts. At
    each epoch end the monitored loss is compared with the best so far: a
    relative decrease of at least ``sig_decrease`` counts as significant
    progress (the layer keeps training); ``patience`` epochs without it move
    on to the next layer (after the last, all layers train). A relative
    increase of at least ``sig_increase`` over the best marks instability:
    the counter restarts instead of moving on.
    """

    def __init__(self, min_init_epochs: int = 10, patience: int = 1, sig_increase: float = 0.15,
                 sig_decrease: float = 0.15, monitor: str = "loss", bottom_up: bool = True,
                 lr_factor: float = 1.0) -> None:
        super().__init__(bottom_up, lr_factor)
        self.min_init_epochs, self.patience = int(min_init_epochs), int(patience)
        self.sig_increase, self.sig_decrease = float(sig_increase), float(sig_decrease)
        self.monitor = monitor

    _state_attrs = ("next_layer", "best", "wait")

    def on_train_begin(self, logs=None):
        self.next_layer = 0
        self.best = None
        self.wait = 0
        self.apply(None)

    def on_epoch_begin(self, epoch, logs=None):
        self.log.append((epoch, self.active_layer))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        loss = (logs or {}).get(self.monitor)
        if loss is None:
            return
        if epoch + 1 == self.min_init_epochs and self.next_layer == 0:
            self.best, self.wait = loss, 0
            self.apply(0)
            self.next_layer = 1
            return
        if self.active_layer is None or self.best is None:
            self.best = loss if self.best is None else min(self.best, loss)
            return
        scale = abs(self.best) or 1.0
        if (self.best - loss) / scale >= self.sig_decrease:
            self.best, self.wait = loss, 0
        elif (loss - self.best) / scale >= self.sig_increase:
            self.wait = 0
        else:
            self.best = min(self.best, loss)
            self.wait += 1
            if self.wait >= self.patience:
                self.wait = 0
                if self.next_layer < self.num_layers():
                    self.apply(self.next_layer)
                    self.next_layer += 1
                else:
                    self.apply(None)
