"""The end of a DBN run (``model.type: dbn``), once its RBMs are trained greedily (``natural_bm.run.pretrain``).

A DBN's partition function is its top RBM's: log Z is estimated on ``dbn.top`` by forward AIS (and reverse AIS
with ``ais.reverse``, from Gibbs chains started at the top RBM's training inputs), from the ``ais`` section,
and by enumeration where ``ais.exact`` asks and the top RBM is small enough. The test figure is
Salakhutdinov & Murray's variational lower bound on log p(v) through the directed layers
(``estimators.dbn_log_likelihood_bound``, ``BOUND_SAMPLES`` recognition samples per image) with each log Z:
``test_ll`` (forward AIS), ``test_ll_reverse`` (reverse AIS: the conservative end), ``test_ll_exact``.

The results folder gets ``model.npz`` (the DBN in the portable format; ``natural_bm.load_model`` reads it),
``samples.png`` (ancestral samples), ``log.csv`` (every RBM's epochs, with an ``rbm`` column), ``summary.txt``
and ``results.json`` (with the run's provenance: command, commit, wall time).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from natural_bm.estimators import dbn_log_likelihood_bound, log_partition_exact
from natural_bm.estimators.report import AISRuns, ReverseAIS, conservative_log_likelihood, evaluate_model
from natural_bm.io import atomic_write_text
from natural_bm.models import export_model
from natural_bm.rng import RandomSource
from natural_bm.run.checkpoints import (
    DBN_MODEL_NAME,
    LOG_NAME,
    RESULTS_NAME,
    SAMPLES_NAME,
    STATUS_COMPLETE,
    SUMMARY_NAME,
    write_json,
)
from natural_bm.run.config import rbm_epochs
from natural_bm.run.data import data_description
from natural_bm.run.estimates import LogZPlan
from natural_bm.run.pretrain import pretrain_log_name
from natural_bm.run.provenance import provenance
from natural_bm.training.fit import monitor_rows
from natural_bm.viz.images import image_grid, tile_scale

__all__ = ["BOUND_SAMPLES", "finish_dbn", "top_inputs"]

#: recognition samples per image of the variational bound
BOUND_SAMPLES = 10
#: what the run's log-likelihood keys are, as results.json says it
ESTIMATOR = (f"variational lower bound on log p(v) through the directed layers (Salakhutdinov & Murray 2008, "
             f"section 4), {BOUND_SAMPLES} recognition samples per image, minus the top RBM's log Z")


def top_inputs(dbn, x) -> torch.Tensor:
    """The rows the top RBM was trained on: ``x`` (n, n_visible) passed up through the hidden probabilities of
    the RBMs below it, as the greedy training passed them; (n, layer_sizes[-2])."""
    top = dbn.top
    data = torch.as_tensor(x, dtype=top.dtype, device=top.device)
    with torch.no_grad():
        for rbm in dbn.rbms[:-1]:
            data = rbm.prob_h_given_v(data)
    return data


def finish_dbn(cfg: dict, out: Path, dbn, splits: tuple, plan: LogZPlan, started: float, resumed: bool,
               verbose: int) -> dict:
    """Write what a DBN run leaves (see the module docstring) and return its results.

    Args:
        cfg: the resolved config.
        dbn: the trained ``DBN``.
        splits: (train, valid, test) rows, as ``load_data`` gives them (valid, test binary or None).
        plan: how the top RBM's log Z is estimated (``estimates.log_z_plan`` of ``dbn.top``).
        started: the ``time.time()`` this session started at; ``resumed``: whether it continued a run.
        verbose: 1 shows AIS's progress bars.
    """
    x, valid, test = splits
    a, seed = cfg["ais"], cfg["seed"]
    export_model(dbn, out / DBN_MODEL_NAME, dataset=data_description(cfg))
    results: dict = {"status": STATUS_COMPLETE, "rbm_epochs": rbm_epochs(cfg), "log_z_of": "the top RBM",
                     "logZ_method": plan.method}
    if plan.ais:
        base = monitor_rows(top_inputs(dbn, x), seed, cfg["data"]["kind"] == "stochastic")
        report = evaluate_model(dbn.top, base_data=base, ais=AISRuns(a["n_runs"], a["n_betas"], a["parity"], seed),
                                exact=plan.exact, progress=verbose == 1,
                                reverse=ReverseAIS(None, a["reverse_gibbs"], base) if a["reverse"] else None)
        results.update(report.to_dict())
        log_z, log_z_reverse, log_z_exact = report.logZ, report.logZ_reverse, report.logZ_exact
    else:
        log_z = log_z_exact = log_partition_exact(dbn.top, progress=False)
        log_z_reverse = None
        results["logZ_exact"] = log_z_exact
    for name, rows in (("valid", valid), ("test", test)):
        if rows is None:
            continue
        ll, se = dbn_log_likelihood_bound(dbn, rows, log_z, n_samples=BOUND_SAMPLES, seed=seed)
        if not plan.ais:  # the bound with the exact log Z only
            results[f"{name}_ll_exact"], results[f"{name}_ll_exact_stderr"] = ll, se
            continue
        results[f"{name}_ll"], results[f"{name}_ll_stderr"] = ll, se
        if log_z_reverse is not None:
            results[f"{name}_ll_reverse"] = conservative_log_likelihood(ll, log_z, log_z_reverse)
        if log_z_exact is not None:
            results[f"{name}_ll_exact"] = ll - (log_z_exact - log_z)
    results.update(ll_estimator=ESTIMATOR, bound_samples=BOUND_SAMPLES, data=data_description(cfg),
                   model_file=DBN_MODEL_NAME)
    _sample_grid(cfg, out, dbn)
    _write_log(out, len(dbn.rbms))
    results["provenance"] = provenance(started, resumed)
    _write_summary(out, cfg, results)
    write_json(out / RESULTS_NAME, results)
    return results


def _sample_grid(cfg: dict, out: Path, dbn) -> None:
    """``samples.png``: ``samples.n_chains`` rows of ``samples.n_samples`` ancestral samples, each after
    ``samples.plot_every`` Gibbs sweeps in the top RBM (the visible probabilities of the down pass)."""
    s = cfg["samples"]
    n = s["n_chains"] * s["n_samples"]
    p = dbn.sample(n, s["plot_every"], generator=RandomSource(cfg["seed"], dbn.top.device))
    side = round(dbn.n_visible ** 0.5)
    shape = tuple(s["image_shape"] or ((side, side) if side * side == dbn.n_visible else (1, dbn.n_visible)))
    image_grid(p.cpu(), shape, n_cols=s["n_samples"], scale=tile_scale(shape), path=out / SAMPLES_NAME)


def _write_log(out: Path, n_rbms: int) -> None:
    """``log.csv``: the rows of every RBM's log (``pretrain_rbm<i>.csv``), bottom first, with an ``rbm`` column
    (an RBM reused from ``model.init_from`` has none)."""
    frames = []
    for layer in range(n_rbms):
        path = out / pretrain_log_name(layer)
        if path.is_file():
            df = pd.read_csv(path)
            df.insert(0, "rbm", layer)
            frames.append(df)
    if frames:
        atomic_write_text(out / LOG_NAME, pd.concat(frames, ignore_index=True).to_csv(index=False))


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _write_summary(out: Path, cfg: dict, results: dict) -> None:
    """``summary.txt``: the DBN, how each RBM trained, log Z and the bound."""
    lines = ["natural_bm DBN run summary", "==========================", "",
             f"layer sizes: {cfg['model']['layer_sizes']}", f"epochs per RBM (bottom first): {results['rbm_epochs']}"]
    if cfg["model"]["init_from"] is not None:
        lines.append(f"bottom RBM: {cfg['model']['init_from']}")
    for layer in range(len(cfg["model"]["layer_sizes"]) - 1):
        path = out / pretrain_log_name(layer)
        if path.is_file():
            last = pd.read_csv(path).iloc[-1]
            lines.append(f"RBM {layer}: last epoch {int(last['epoch'])}, loss {float(last['loss']):.4f}")
    lines += ["", f"status: {results['status']}"]
    if results.get("logZ") is not None:
        lines.append(f"log Z of the top RBM (forward AIS): {_fmt(results['logZ'])}")
    if results.get("bracket") is not None:
        lines.append(f"forward and reverse AIS: {results['bracket']}")
    for key, what in (("logZ_reverse", "log Z (reverse AIS)"), ("logZ_exact", "log Z of the top RBM (exact)"),
                      ("test_ll", "test bound (forward log Z)"), ("test_ll_stderr", "its standard error"),
                      ("test_ll_reverse", "test bound (reverse log Z, conservative)"),
                      ("test_ll_exact", "test bound (exact log Z)"), ("test_ll_exact_stderr", "its standard error")):
        if results.get(key) is not None:
            lines.append(f"{what}: {_fmt(results[key])}")
    lines.append(f"wall time of this session: {results['provenance']['wall_time_s']:.0f} s")
    atomic_write_text(out / SUMMARY_NAME, "\n".join(lines) + "\n")
