"""What a resolved config builds: the model (compiled with its optimiser and algorithm), the warm start,
and the callbacks of a run."""

from __future__ import annotations

from pathlib import Path

from natural_bm import DBM, DBN, RBM
from natural_bm.callbacks import (
    AISCallback,
    CSVLogger,
    ExactLikelihoodCallback,
    GibbsStepsScheduler,
    LearningRateScheduler,
    MomentumRateScheduler,
    PlotCallback,
    SampleCallback,
    SummaryCallback,
    TrajectoryAISCallback,
)
from natural_bm.io import first_line
from natural_bm.run.checkpoints import LOG_NAME, SAMPLES_NAME, RunCheckpoint
from natural_bm.run.config import make_callback
from natural_bm.run.estimates import MAX_EXACT_STATES, LogZPlan
from natural_bm.run.rules import ConfigError
from natural_bm.run.schedules import schedules_of
from natural_bm.training import SGD, Adam
from natural_bm.training.centering import get_centering
from natural_bm.training.sparsity import get_sparsity

__all__ = ["PLOT_INTERVAL_S", "RunCallbacks", "algorithm_settings", "build_model", "build_optimizer",
           "persistent_chains", "schedulers", "warm_start"]

#: history.png is re-drawn after an epoch only when this many seconds have passed since the last drawing
#: (a drawing costs 1-3 s on 2 cores, more than a small model's epoch); the end of training draws the rest
PLOT_INTERVAL_S = 30.0

#: the settings of each algorithm that come from the training section
_SETTINGS = {"cd": ("k", "precision"), "pcd": ("k", "n_chains", "precision"), "exact": (),
             "mfpcd": ("k", "n_chains", "mf_steps"),
             "pt": ("k", "n_chains", "n_temperatures", "min_beta", "mf_steps", "adaptive_ladder", "swap_target")}
#: config keys whose algorithm argument has another name
_ARGUMENT = {"adaptive_ladder": "adaptive", "swap_target": "target"}


def algorithm_settings(training: dict) -> dict:
    """The keyword arguments of ``training.algorithm`` from the training section (``exact`` takes none)."""
    names = _SETTINGS[training["algorithm"]]
    if training.get("precision", "float32") != "float32" and "precision" not in names:
        raise ConfigError(f"training.precision {training['precision']!r} is for the cd and pcd algorithms of an "
                          f"RBM, not {training['algorithm']!r}; remove it (float32).")
    return {_ARGUMENT.get(name, name): training[name] for name in names}


def build_optimizer(o: dict):
    """The optimiser of an ``optimizer`` section."""
    if o["name"] == "sgd":
        return SGD(o["lr"], o["momentum"], o["nesterov"], o["decay"], o["decay_mode"])
    return Adam(o["lr"], o["beta_1"], o["beta_2"], o["epsilon"], o["decay"], o["decay_mode"])


def _made(cls, *args, sizes_key: str, other_key: str, **kwargs):
    """``cls(*args, **kwargs)`` with what it refuses reported as a ConfigError naming the model key: the
    units (a unit type's error), ``other_key`` (any other), ``sizes_key`` (parameters that cannot be allocated)."""
    try:
        return cls(*args, **kwargs)
    except (ValueError, TypeError) as err:
        units = kwargs.get("units") is not None and (isinstance(err, TypeError) or "unit" in str(err)
                                                     or "sigma" in str(err))
        raise ConfigError(f"{'model.units' if units else other_key}: {first_line(err)}") from None
    except (RuntimeError, MemoryError) as err:  # (torch's allocator says RuntimeError)
        raise ConfigError(f"{sizes_key}: the model's parameters cannot be allocated ({first_line(err)}).") from None


def build_model(cfg: dict, n_visible: int):
    """The model of a resolved config for data with ``n_visible`` columns: an RBM or a DBM compiled with its
    optimiser and algorithm, or a DBN (its RBMs are compiled one by one as they are trained greedily).

    Raises:
        ConfigError: settings the model or its training refuse, naming the key.
    """
    m, t = cfg["model"], cfg["training"]
    if m["type"] == "dbn":
        return _dbn(cfg, n_visible)
    common = {"init": m["init"], "weight_scale": m["weight_scale"], "seed": cfg["seed"], "device": cfg["device"],
              "units": m["units"]}
    if m["type"] == "rbm":
        model = _made(RBM, n_visible, m["n_hidden"], sizes_key="model.n_hidden", other_key="model", **common)
    else:
        sizes = m["layer_sizes"] or [n_visible, m["n_hidden"]]
        if sizes[0] != n_visible:
            raise ConfigError(f"model.layer_sizes[0] = {sizes[0]} but the data has {n_visible} columns.")
        topology = _topology(m["topology"])
        model = _made(DBM, sizes, topology, sizes_key="model.layer_sizes",
                      other_key="model.topology" if topology else "model", **common)
    for name, make in (("centering", get_centering), ("sparsity", get_sparsity)):
        try:
            made = make(t[name])
            if made is not None:
                made.check_model(model)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"training.{name}: {first_line(err)}") from None
    settings = algorithm_settings(t)
    try:
        model.compile(build_optimizer(cfg["optimizer"]), t["algorithm"], l1=t["l1"], l2=t["l2"],
                      jit_compile=t["jit_compile"], cuda_graph=t["cuda_graph"], centering=t["centering"],
                      max_norm=t["max_norm"], sparsity=t["sparsity"], **settings)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"training.algorithm {t['algorithm']!r}: {first_line(err)}") from None
    return model


def _dbn(cfg: dict, n_visible: int) -> DBN:
    m = cfg["model"]
    if m["layer_sizes"][0] != n_visible:
        raise ConfigError(f"model.layer_sizes[0] = {m['layer_sizes'][0]} but the data has {n_visible} columns.")
    return _made(DBN, m["layer_sizes"], init=m["init"], weight_scale=m["weight_scale"], seed=cfg["seed"],
                 device=cfg["device"], sizes_key="model.layer_sizes", other_key="model")


def _topology(spec: dict | None):
    """A DBM topology from the config's mapping (YAML may give the layers as strings)."""
    if not spec:
        return None
    try:
        return {int(k): v for k, v in spec.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"model.topology must map layer numbers to the layers joined to them, e.g. "
                          f"{{0: [1], 1: [2]}}, got {spec!r}.") from None


def warm_start(model, cfg: dict) -> None:
    """Copy the parameters of the model file ``model.init_from`` into ``model`` (nothing when it is null);
    for a DBN, into its bottom RBM (``model.rbms[0]``).

    Only weights and biases are read: the optimiser, persistent chains and centering offsets start as
    this config makes them. The path is relative to the working directory.

    Raises:
        ConfigError: naming ``model.init_from``, when the file is missing, damaged, or holds another
            class or architecture.
    """
    path = cfg["model"]["init_from"]
    if path is None:
        return
    if not Path(path).is_file():
        raise ConfigError(f"model.init_from: no model file at {path} (the path is relative to the directory "
                          f"natural-bm runs in).")
    target = model.rbms[0] if isinstance(model, DBN) else model
    try:
        target.warm_start(path)
    except ValueError as err:
        what = " (a DBN's init_from is its bottom RBM)" if isinstance(model, DBN) else ""
        raise ConfigError(f"model.init_from{what}: {err}") from None


def persistent_chains(model):
    """The model's persistent chains (visible rows or layer states) for reverse AIS to start from; None
    for algorithms without them."""
    return model.trainer.model_chains()


class RunCallbacks:
    """The callbacks of a run, by role: ``ais`` (the epoch AIS; None when the plan enumerates log Z instead),
    ``exact`` (the epoch's exact log Z of such runs, else None), ``sampler``, ``plot``, ``summary``,
    ``checkpoint``, and ``all`` (the list ``fit`` gets, in order); ``plan`` is the run's ``LogZPlan``."""

    #: classes of the callbacks a resumed run may switch off through what it may change (ais.trajectory):
    #: a checkpoint's state of one of them finds no callback then, and is dropped
    switchable = ("TrajectoryAISCallback",)

    def __init__(self, cfg: dict, out: Path, model, image_shape, append_log: bool, run_config: dict,
                 plan: LogZPlan, extra: tuple = ()) -> None:
        t, a, s = cfg["training"], cfg["ais"], cfg["samples"]
        last_epoch = t["epochs"] - 1
        self.plan = plan
        self.ais = AISCallback(model, n_runs=a["n_runs"], n_betas=a["n_betas"], exact=plan.exact,
                               epoch_ls=a["epochs"] if a["epochs"] is not None else [last_epoch], seed=cfg["seed"],
                               parity=a["parity"]) if plan.ais else None
        self.exact = None if plan.ais else ExactLikelihoodCallback(every=1 if plan.exact_every_epoch else t["epochs"],
                                                                   max_exact_states=MAX_EXACT_STATES)
        # log Z along training; a resumed run without the trajectory's state starts it from a full AIS
        self.trajectory = TrajectoryAISCallback(
            reanchor_every=a["trajectory_reanchor_every"], ais_betas=a["trajectory_betas"], ais_runs=a["n_runs"],
            anchor="ais" if append_log else "auto", seed=cfg["seed"]) if a["trajectory"] is True else None
        self.sampler = SampleCallback(model, out / SAMPLES_NAME, n_chains=s["n_chains"], n_samples=s["n_samples"],
                                      plot_every=s["plot_every"], epoch_ls=[last_epoch], image_shape=image_shape,
                                      seed=cfg["seed"])
        csv = out / LOG_NAME
        self.summary = SummaryCallback(out, csv)
        self.plot = PlotCallback(out, csv, min_interval=PLOT_INTERVAL_S)
        self.checkpoint = RunCheckpoint(out, keep_last=t["keep_checkpoints"], keep_best=t["best_checkpoint"],
                                        run_config=run_config)
        self.all = [
            CSVLogger(csv, append=append_log), self.ais or self.exact, *([self.trajectory] if self.trajectory else []),
            self.sampler, self.plot, self.summary,
            # before the checkpoint, so a stop (early stopping, divergence) is known when it is written
            *(make_callback(entry) for entry in cfg["callbacks"]),
            self.checkpoint,
            *schedulers(schedules_of(cfg["schedule"], "schedule")),
            *extra,
        ]


def schedulers(schedules: dict) -> list:
    """The scheduler callbacks of ``{lr, momentum, k: schedule or None}``."""
    classes = {"lr": LearningRateScheduler, "momentum": MomentumRateScheduler, "k": GibbsStepsScheduler}
    return [classes[key](fn) for key, fn in schedules.items() if fn is not None]
