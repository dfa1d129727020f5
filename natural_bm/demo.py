"""The main job of ``make demo``: an RBM trained on MNIST with PCD, and a log Z it can trust.

Trains a 200-hidden-unit RBM with PCD-1 on MNIST binarised afresh for every
minibatch (``fit(binarize=True)``, as Salakhutdinov's code does), measures
on the once-sampled binary test set, and estimates log Z twice: forward AIS
(which errs low) and reverse AIS (which errs high) from chains of parallel
tempering with a ladder that tunes itself (``ParallelTempering(adaptive=True)``:
the persistent chains of PCD sit in a few modes). When the two agree they
bracket log Z, and the test log-likelihood lies between the two numbers
printed. Along training, trajectory AIS (``TrajectoryAISCallback``) gives
log Z and the log-likelihoods every epoch, so ``history.png`` draws them as
curves. Writes a results folder: ``config.json``, ``log.csv``,
``history.png``, ``samples_epoch*.png`` (Gibbs chains), ``samples_pt.png``
(the tempering chains), ``filters.png``, ``summary.txt``, ``model.pt`` and
``results.json``, and prints where it is. A few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import (
    AISCallback,
    CSVLogger,
    PlotCallback,
    SampleCallback,
    SummaryCallback,
    TrajectoryAISCallback,
)
from natural_bm.datasets import load_mnist
from natural_bm.estimators.ais import MIN_EFFECTIVE_SAMPLE_SIZE
from natural_bm.estimators.report import AISRuns, ForwardAIS, ReverseAIS, evaluate_model
from natural_bm.io import atomic_write_text
from natural_bm.rng import RandomSource
from natural_bm.run import PLOT_INTERVAL_S
from natural_bm.sampling import ParallelTempering
from natural_bm.viz import image_grid, plot_filters

DEFAULTS = {
    "n_hidden": 200,
    "epochs": 30,
    "batch_size": 100,
    "lr": 0.002,
    "momentum": 0.9,
    "algorithm": "pcd",
    "k": 1,
    "n_chains": 100,
    "l2": 1e-4,
    "kind": "stochastic",  # grey levels, binarised afresh for every training minibatch
    "n_betas": 14501,
    "pt_steps": 300,  # tempering steps before the grid and reverse AIS (after the ladder is tuned)
    "seed": 0,
    "precision": "float32",  # of the training products (natural_bm.training.precision)
}


def run(out: str | Path | None = None, **overrides) -> Path:
    """Train the demo RBM; returns the results folder."""
    cfg = {**DEFAULTS, **overrides}
    out = Path(out or Path("results") / time.strftime("demo-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    binarize = cfg["kind"] == "stochastic"
    data = load_mnist("probability" if binarize else cfg["kind"])
    sampled = load_mnist("sampled")  # the once-binarised validation and test sets
    valid = sampled.valid if binarize else data.valid
    torch.manual_seed(cfg["seed"])
    rbm = RBM(784, cfg["n_hidden"], seed=cfg["seed"]).init_from_data(data.train)
    rbm.compile(SGD(cfg["lr"], momentum=cfg["momentum"]), cfg["algorithm"], k=cfg["k"],
                n_chains=cfg["n_chains"], l2=cfg["l2"], precision=cfg["precision"])
    last = cfg["epochs"] - 1
    csv = out / "log.csv"
    ais = AISCallback(rbm, n_runs=100, n_betas=cfg["n_betas"], epoch_ls=[last], seed=cfg["seed"])
    callbacks = [
        CSVLogger(csv),
        ais,
        TrajectoryAISCallback(seed=cfg["seed"]),  # log Z and log-likelihoods every epoch
        SampleCallback(rbm, out / "samples.png", n_chains=10, n_samples=10, plot_every=1000, epoch_ls=[last],
                       seed=cfg["seed"]),
        PlotCallback(out, csv, min_interval=PLOT_INTERVAL_S),
        SummaryCallback(out, csv),
    ]
    t0 = time.perf_counter()
    rbm.fit(data.train, batch_size=cfg["batch_size"], epochs=cfg["epochs"], validation_data=valid,
            callbacks=callbacks, seed=cfg["seed"], verbose=2, binarize=binarize)
    seconds = time.perf_counter() - t0
    rbm.save(out / "model.pt")
    plot_filters(rbm, (28, 28), out / "filters.png", n_filters=100, n_cols=10)
    z = ais.results[last]
    t1 = time.perf_counter()
    chains = tempering_chains(rbm, sampled.valid[:100], cfg["pt_steps"], cfg["seed"])
    with torch.no_grad():  # E[v | h] of a hidden draw from each chain: the picture of its state
        means = rbm.prob_v_given_h(rbm.sample_h(chains[0], generator=RandomSource(cfg["seed"], rbm.device)))
    image_grid(means.cpu(), (28, 28), n_cols=10, path=out / "samples_pt.png")
    report = evaluate_model(  # forward AIS from the last epoch; reverse AIS from the model's own persistent chains
        rbm, data={"test": sampled.test}, base_data=ais.params["train_data"],
        ais=AISRuns(100, cfg["n_betas"], "auto", cfg["seed"] + last),
        forward=ForwardAIS(z["logZ"], z["logZ_lo"], z["logZ_hi"], z["ais_ess"], z["runs"], z["betas"],
                           z["annealed_layers"]),
        reverse=ReverseAIS(start=chains))
    results = {**report.to_dict(), "test_data": "MNIST test set binarised once (kind='sampled')",
               "reverse_start": f"parallel tempering, adaptive ladder, {cfg['pt_steps']} steps after tuning",
               "seconds_training": seconds, "seconds_reverse_ais": time.perf_counter() - t1}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    _print(report)
    print(f"trained {cfg['epochs']} epochs in {seconds:.1f} s; results in {out.resolve()}")
    return out


def tempering_chains(model, start, steps: int, seed: int) -> list:
    """100 chains of parallel tempering with a ladder tuned to swap rates of 0.2 to 0.3, started at
    ``start`` and run ``steps`` steps after the tuning: the beta = 1 chains, one state per layer."""
    gen = RandomSource(seed + 7, model.device)
    pt = ParallelTempering(model, adaptive=True)
    with torch.no_grad():
        pt.init_chains(model.units[0].states_from_data(torch.as_tensor(start, dtype=model.dtype), gen), gen)
        pt.tune(200, 10, gen)
        pt.run(steps, gen)
    print(f"parallel tempering: {len(pt.betas)} temperatures, swap rates "
          f"{float(pt.swap_rates().min()):.2f} to {float(pt.swap_rates().max()):.2f}")
    return pt.chains[0]


def _print(report) -> None:
    """The demo's verdict: the log Z bracket and the test log-likelihood between its ends."""
    f, test = report.forward, report.splits["test"]
    print(f"log Z = {f.logZ:.2f} [{f.logZ_lo:.2f}, {f.logZ_hi:.2f}] nats by forward AIS "
          f"({f.ais_ess:.1f} effective runs of 100), {report.logZ_reverse:.2f} by reverse AIS "
          f"({report.ais_ess_reverse:.1f} effective runs)")
    if report.brackets:
        print(f"test log-likelihood between {report.conservative(test.ll):.2f} and {test.ll:.2f} nats "
              f"(± {test.ll_stderr:.2f} over test images; the once-sampled test set)")
    else:
        print(f"test log-likelihood {test.ll:.2f} ± {test.ll_stderr:.2f} nats; {report.bracket}")
    if min(f.ais_ess, report.ais_ess_reverse) < MIN_EFFECTIVE_SAMPLE_SIZE:
        print("  few effective AIS runs: the band is not trustworthy; for a firmer log Z anneal longer, e.g.\n"
              "  AIS(model, data=train, n_betas=60001).estimate_log_error_Z() (README: Measuring a model)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="natural-bm demo", description=__doc__)
    parser.add_argument("--out", help="results folder (default results/demo-<time>)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="number of epochs")
    args = parser.parse_args(argv)
    run(args.out, epochs=args.epochs)


if __name__ == "__main__":
    main()
