"""The fit loop: epochs, batches and callbacks.

Logs passed to callbacks (all values are Python floats, nats where a unit applies):

Per training batch (``on_train_batch_end``):
    ``batch``  index of the batch in the epoch.
    ``size``   number of rows in the batch.
    ``loss``   mean reconstruction cross-entropy of the batch, nats per image:
               -sum_i [v_i log r_i + (1 - v_i) log(1 - r_i)] with
               r = p(v = 1 | h), h ~ p(h | v). A training signal, not a likelihood.
               It stays on the model's device (a 0-dim tensor) for callbacks with
               ``batch_logs_on_device = True`` (``BaseLogger``, ``ProgbarLogger``),
               and is a float for the others (``CallbackList`` reads it), so a run
               whose callbacks need no batch values never waits for the device.

Per epoch (``on_epoch_end``):
    ``loss``             size-weighted mean of the batch losses (``BaseLogger``).
    ``pll``              mean stochastic pseudo-log-likelihood (nats per image,
                         see ``RBM.pseudo_log_likelihood``) of a fixed monitoring
                         subset: the first ``min(10000, n)`` training rows
                         (not with ``fit(..., pseudo_likelihood=False)``).
    ``val_loss``         reconstruction cross-entropy of the validation data.
    ``val_pll``          pseudo-log-likelihood of the validation data.
    ``free_energy_gap``  mean free energy of the validation data minus that of
                         the training monitoring subset, nats. It grows when the
                         model overfits (Hinton 2010, "A practical guide", 6.1).
The ``val_*`` keys and ``free_energy_gap`` appear only with ``validation_data``;
``val_accuracy`` (the fraction of validation rows whose most probable label under
p(y | v) is theirs) only when training with labels ``y`` and validation labels.
Callbacks such as ``AISCallback`` add their own keys.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from natural_bm import distributed as dist
from natural_bm.callbacks.base_logger import BaseLogger
from natural_bm.callbacks.callback_list import CallbackList
from natural_bm.callbacks.history import History
from natural_bm.callbacks.progbar_logger import ProgbarLogger
from natural_bm.datasets.mapped import MappedRows
from natural_bm.rng import RandomSource, bernoulli, randint
from natural_bm.seeding import epoch_seed, new_seed
from natural_bm.training.algorithms import StepInfo
from natural_bm.training.data_parallel import DataParallel
from natural_bm.training.evaluation import evaluate_batches
from natural_bm.training.graphed_update import GraphedUpdate
from natural_bm.training.rbm_steps import CompiledSteps
from natural_bm.validation import as_data_tensor, as_label_tensor, check_positive_int

MONITOR_ROWS = 10_000


def monitor_rows(x: torch.Tensor, seed: int, binarize: bool = False) -> torch.Tensor:
    """The training rows ``fit`` monitors (``pll``, ``free_energy_gap``, the AIS base model and
    ``train_ll``): the first ``MONITOR_ROWS`` rows of ``x``, and with ``binarize`` one fixed
    binarisation of them drawn from the run's ``seed``."""
    rows = x[:MONITOR_ROWS]
    if binarize:
        rows = bernoulli(rows, RandomSource(epoch_seed(seed, -2), rows.device))
    return rows


def resolve_verbose(verbose: int | str) -> int:
    """0, 1 or 2; ``"auto"`` is 1 (progress bars) on a terminal and 2 (one line per epoch) otherwise,
    so a log file gets no progress-bar text (Keras's convention)."""
    if verbose == "auto":
        return 1 if sys.stderr.isatty() else 2
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto', got {verbose!r}.")
    return int(verbose)


def update_mode(device: torch.device):
    """The autograd mode of ``fit``'s updates on ``device``: ``torch.inference_mode`` on the CPU, where it
    skips the version counters and view tracking that ``torch.no_grad`` keeps (per-batch time that shows
    on small models: ``scripts/bench_sklearn.py``), and ``torch.no_grad`` elsewhere (the CUDA graph of an
    update is captured inside it, and a capture in inference mode is untested here). Tensors an update
    makes on the CPU (new chains, optimiser slots, a kernel's buffers) are then inference tensors: read
    them anywhere, change them in place only inside an update; an ``Algorithm`` whose step needs autograd
    wraps it in ``torch.inference_mode(False)`` and ``torch.enable_grad()``."""
    return torch.inference_mode if device.type == "cpu" else torch.no_grad


def _order(callbacks) -> list:
    """Stable order by role: callbacks that add keys to the epoch logs
    (``produces_logs = True``, e.g. ``AISCallback``) first, then the rest
    (loggers such as ``CSVLogger``), then those that read the written logs
    (``order = 2``: ``PlotCallback``, ``SummaryCallback``)."""
    def rank(c) -> int:
        return 0 if getattr(c, "produces_logs", False) else getattr(c, "order", 1)

    return sorted(callbacks or [], key=rank)


def _step(trainer, v, clamp, gen, compiled: CompiledSteps | None):
    """The algorithm's ``(grads, StepInfo)`` for the batch ``v``, through the compiled RBM kernels when
    ``compiled`` accepts the batch's size; the trainer's algorithm state advances."""
    model, alg = trainer.model, trainer.algorithm
    if compiled is not None and compiled.accepts(v.shape[0]):
        key = randint(2**62, (), gen, v.device)
        counters = compiled.counters(alg.compiled_rows(v), max(model.n_visible, model.n_hidden), model.W.device)
        grads, info, trainer.algorithm_state = alg.compiled_step(model, v, trainer.algorithm_state, key, counters)
    else:
        grads, info, trainer.algorithm_state = alg.step(model, v, trainer.algorithm_state, gen, clamp)
    return grads, info


def _data_means(model, v: torch.Tensor, info: StepInfo) -> list:
    """The batch's data-dependent means of every layer: the positive phase's, or (where the step did not
    compute them, e.g. the compiled RBM steps) the mean-field posterior's. For centering and sparsity."""
    if info.positive is not None:
        return [x.mean(0) for x in info.positive]
    mu, _ = model.mean_field(v)
    return [m.mean(0) for m in mu]


def _update(trainer, v, clamp, gen, parallel, params, need_means: bool, compiled) -> torch.Tensor:
    """One training update on the batch ``v`` (this rank's share of it in data-parallel runs): the
    algorithm's gradient, sparsity targets, then the optimiser's step (centred where the model is).
    Returns the batch's mean loss (0-d, on the device)."""
    model, centering, sparsity = trainer.model, trainer.centering, trainer.sparsity
    if parallel is None:
        grads, info = _step(trainer, v, clamp, gen, compiled)
        means = _data_means(model, v, info) if need_means else None
        loss = info.loss.mean()
    else:
        v_rank, clamp_rank, weight = parallel.local(v, clamp)
        grads, info = _step(trainer, v_rank, clamp_rank, gen, compiled)
        means = _data_means(model, v_rank, info) if need_means else None
        grads, loss, means = parallel.combine(grads, info.loss, weight, means)
        loss = loss / v.shape[0]
    if sparsity is not None:
        grads = sparsity.add_gradient(model, grads, means)
    if centering is None:
        trainer.optimizer.step(params, grads)  # weight decay, frozen groups, lr factors: its groups
    else:
        centering.apply(model, params, grads, means, trainer.optimizer)
    return loss


def _check_data(model, x, validation_data, y, binarize, algorithm):
    """The validated training rows, validation rows and labels of a ``fit`` call."""
    device, dtype = model.device, model.dtype
    if isinstance(x, np.memmap):  # larger than memory: rows read per batch (datasets.mapped)
        x = MappedRows(x, device, dtype, "x", model.data_range)
    if isinstance(x, MappedRows):
        if x.shape[1] != model.n_input:
            raise ValueError(f"`x` has {x.shape[1]} columns but the model has {model.n_input} visible units.")
        x = x.to(device, dtype)
    else:
        x = as_data_tensor(x, "x", model.n_input, device=device, dtype=dtype, value_range=model.data_range)
    if binarize and not model.binary_visible:
        raise ValueError("binarize=True draws binary minibatches, but this model's visible units are "
                         "real-valued; train on the values (binarize=False).")
    label_layer, y_t, y_val = None, None, None
    if y is not None:
        label_layer = model.label_layer()
        if not algorithm.supports_clamp:
            raise ValueError(f"training with labels `y` needs an algorithm with a mean-field positive phase "
                             f"('mfpcd' or 'pt'), not {algorithm.name!r}.")
        y_t = as_label_tensor(y, "y", x.shape[0], model.layer_sizes[label_layer], device, dtype)
    x_val = None
    if validation_data is not None:
        if isinstance(validation_data, tuple):  # Keras's (x_val, y_val); a list is the data itself
            if len(validation_data) > 1 and validation_data[1] is not None and y_t is not None:
                y_val = validation_data[1]
            validation_data = validation_data[0]
        x_val = as_data_tensor(validation_data, "validation_data", model.n_input, device=device, dtype=dtype,
                               value_range=model.data_range)
        if y_val is not None:
            y_val = as_label_tensor(y_val, "validation_data[1]", x_val.shape[0], model.layer_sizes[label_layer],
                                    device, dtype).argmax(1)
    return x, x_val, label_layer, y_t, y_val


def _epoch_metrics(trainer, cb, x_monitor, x_val, y_val, label_layer, batch_size, gen, parallel,
                   pseudo_likelihood: bool = True) -> dict:
    """The epoch-end keys of the fit loop: the algorithm's (swap rates), ``pll`` (unless
    ``pseudo_likelihood`` is False) and the validation keys."""
    model = trainer.model
    reduce = None if parallel is None else parallel.sum_counts
    logs, trainer.algorithm_state = trainer.algorithm.epoch_logs(trainer.algorithm_state, reduce)
    with torch.no_grad():
        if model.binary_visible and pseudo_likelihood:  # the pseudo-likelihood flips binary units
            logs["pll"] = float(model.pseudo_log_likelihood(x_monitor, gen).mean())
        if x_val is not None:
            val = evaluate_batches(model, x_val, batch_size, cb, gen)
            logs["val_loss"] = val["loss"]
            if model.binary_visible:
                logs["val_pll"] = val["pll"]
            train_fe = float(model.monitor_free_energy(x_monitor).mean())
            logs["free_energy_gap"] = val["free_energy"] - train_fe
            if y_val is not None:
                logs["val_accuracy"] = float((model.predict(x_val, label_layer) == y_val).double().mean())
    return logs


@dataclass
class _FitRun:
    """What one ``fit`` call works with: its data, random source, data-parallel share, hooks and the
    update's compiled forms (built once by ``_begin``)."""

    trainer: Any
    x: Any
    x_val: torch.Tensor | None
    x_monitor: torch.Tensor
    label_layer: int | None
    y_t: torch.Tensor | None
    y_val: torch.Tensor | None
    gen: RandomSource
    parallel: DataParallel | None
    cb: CallbackList
    history: History
    batch_size: int
    steps: int
    shuffle: bool
    binarize: bool
    seed: int
    pseudo_likelihood: bool = True
    compiled: CompiledSteps | None = None
    graphed: GraphedUpdate | None = None
    params: dict = field(default_factory=dict)
    need_means: bool = False
    update_mode: Any = torch.no_grad


def fit(
    trainer,
    x,
    batch_size: int = 100,
    epochs: int = 1,
    validation_data=None,
    callbacks=None,
    shuffle: bool = True,
    verbose: int | str = "auto",
    initial_epoch: int = 0,
    seed: int | None = None,
    binarize: bool = False,
    y=None,
    pseudo_likelihood: bool = True,
) -> History:
    """Train ``trainer.model`` on ``x`` (and labels ``y``); see ``BoltzmannMachine.fit``."""
    epochs = check_positive_int(epochs, "epochs", minimum=0)
    initial_epoch = check_positive_int(initial_epoch, "initial_epoch", minimum=0)
    run = _begin(trainer, x, batch_size, epochs, validation_data, callbacks, shuffle, resolve_verbose(verbose),
                 initial_epoch, seed, binarize, y, bool(pseudo_likelihood))
    run.cb.on_train_begin({})
    for epoch in range(initial_epoch, epochs):
        _train_epoch(run, epoch)
        if trainer.stop_training:
            break
    if run.parallel is not None:
        trainer.algorithm_state = run.parallel.global_state(trainer.algorithm_state)
        trainer.sharded_by = None
    run.cb.on_train_end({})
    return run.history


def _begin(trainer, x, batch_size, epochs, validation_data, callbacks, shuffle, verbose, initial_epoch, seed,
           binarize, y, pseudo_likelihood: bool = True) -> _FitRun:
    """Check the data, seed the run, build the hooks and make the algorithm's state ready (a fresh one, or
    the trainer's, sharded over the ranks of a process group)."""
    model = trainer.model
    batch_size = check_positive_int(batch_size, "batch_size")
    x, x_val, label_layer, y_t, y_val = _check_data(model, x, validation_data, y, binarize, trainer.algorithm)
    seed = new_seed() if seed is None else int(seed)
    trainer.seed = seed
    n = x.shape[0]
    steps = (n + batch_size - 1) // batch_size
    if trainer.sharded_by is not None:  # global state, e.g. left sharded by an interrupted fit (a collective)
        trainer.algorithm_state = trainer.sharded_by.global_state(trainer.algorithm_state)
        trainer.sharded_by = None
    parallel = None
    if dist.is_distributed():  # data-parallel: this rank's share of every batch (training.data_parallel)
        gen = dist.ShardedSource(0, model.device)
        parallel = DataParallel(trainer, n, batch_size, gen)
    else:
        gen = RandomSource(0, model.device)
    x_monitor = monitor_rows(x, seed, binarize)
    history = History()
    cb = _hooks(model, callbacks, history, verbose, {
        "batch_size": batch_size, "epochs": epochs, "steps": steps, "samples": n, "verbose": verbose,
        "do_validation": x_val is not None, "seed": seed, "initial_epoch": initial_epoch,
        "binarize": bool(binarize), "train_data": x_monitor, "validation_data": x_val,
        "pseudo_likelihood": pseudo_likelihood})
    trainer.history, trainer.stop_training, trainer.stop_reason, trainer.diverged = history, False, None, False
    run = _FitRun(trainer, x, x_val, x_monitor, label_layer, y_t, y_val, gen, parallel, cb, history, batch_size,
                  steps, shuffle, bool(binarize), seed, pseudo_likelihood)
    gen.manual_seed(epoch_seed(seed, -1))
    if not trainer.algorithm.state_is_usable(model, trainer.algorithm_state):
        trainer.algorithm_state = trainer.algorithm.init(model, x, gen)
    run.compiled = CompiledSteps() if trainer.runs_compiled_steps() else None
    if parallel is not None:
        trainer.algorithm_state = parallel.shard_state(trainer.algorithm_state)
        trainer.sharded_by = parallel
    if trainer.centering is not None:
        with torch.no_grad():
            trainer.centering.on_fit_begin(model, x)
    run.params = model.parameter_dict()
    run.need_means = trainer.centering is not None or trainer.sparsity is not None
    run.update_mode = update_mode(model.device)
    if parallel is None and y_t is None and GraphedUpdate.supported(trainer):  # the update replayed from a graph
        run.graphed = GraphedUpdate(trainer, batch_size, run.compiled)
    return run


def _hooks(model, callbacks, history: History, verbose: int, params: dict) -> CallbackList:
    """The fit's callbacks in their order (``BaseLogger`` first, ``History`` last, a progress bar on rank 0),
    with the model and ``params`` (and the metric names) set."""
    cbs = [BaseLogger(), *_order(callbacks), history]
    if verbose and dist.rank() == 0:  # one console for all ranks
        cbs.append(ProgbarLogger())
    cb = CallbackList(cbs)
    cb.set_model(model)
    metrics = ["loss"] + (["pll"] if params["pseudo_likelihood"] else []) \
        + (["val_loss", "val_pll", "free_energy_gap"] if params["do_validation"] else [])
    if not model.binary_visible:  # no pseudo-likelihood of real values
        metrics = [k for k in metrics if not k.endswith("pll")]
    cb.set_params({**params, "metrics": metrics})
    return cb


def _train_epoch(run: _FitRun, epoch: int) -> None:
    """One epoch: its seeded stream and order, the updates (until a callback stops training) and the
    epoch's logs."""
    trainer, cb, gen = run.trainer, run.cb, run.gen
    gen.manual_seed(epoch_seed(run.seed, epoch))
    epoch_logs: dict = {}
    cb.on_epoch_begin(epoch, epoch_logs)
    order = gen.randperm(run.x.shape[0]).to(trainer.model.device) if run.shuffle else None
    for b in range(run.steps):
        _train_batch(run, order, b)
        if trainer.stop_training:
            break
    epoch_logs.update(_epoch_metrics(trainer, cb, run.x_monitor, run.x_val, run.y_val, run.label_layer,
                                     run.batch_size, gen, run.parallel, run.pseudo_likelihood))
    cb.on_epoch_end(epoch, epoch_logs)


def _batch_rows(run: _FitRun, order: torch.Tensor | None, lo: int, hi: int):
    """Rows ``lo:hi`` of the epoch's ``order`` (binarised afresh where asked) and their clamped labels."""
    x, gen = run.x, run.gen
    if order is None:
        v = x[lo:hi]
    else:
        v = x[order[lo:hi]] if isinstance(x, MappedRows) else torch.index_select(x, 0, order[lo:hi])
    if run.binarize:  # a fresh stochastic binarisation per minibatch, drawn from the epoch's stream
        v = bernoulli(v, gen)
    clamp = None
    if run.y_t is not None:
        rows = order[lo:hi] if order is not None else None
        clamp = {run.label_layer: torch.index_select(run.y_t, 0, rows) if rows is not None else run.y_t[lo:hi]}
    return v, clamp


def _train_batch(run: _FitRun, order: torch.Tensor | None, b: int) -> None:
    """Batch ``b`` of the epoch's ``order``: the hooks around its rows' update (all in ``run.update_mode``)."""
    cb = run.cb
    lo, hi = b * run.batch_size, min(run.x.shape[0], (b + 1) * run.batch_size)
    batch_logs = {"batch": b, "size": hi - lo}
    cb.on_train_batch_begin(b, batch_logs)
    with run.update_mode():
        v, clamp = _batch_rows(run, order, lo, hi)
        loss = None if run.graphed is None else run.graphed(v, run.gen)  # (None for a batch of another size)
        if loss is None:  # the ordinary path (and the graph's fall-back)
            loss = _update(run.trainer, v, clamp, run.gen, run.parallel, run.params, run.need_means, run.compiled)
        batch_logs["loss"] = loss.detach()  # on the device: read by callbacks that want it (CallbackList)
    cb.on_train_batch_end(b, batch_logs)
