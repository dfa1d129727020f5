"""The ``natural-bm`` argument parser: one sub-parser per command, retired flags refused by name."""

from __future__ import annotations

import argparse
import textwrap

import natural_bm.run as run
from natural_bm import __version__
from natural_bm.cli.errors import CLIError
from natural_bm.models.portable import FORMATS
from natural_bm.run.preemption import DEFAULT_SIGNALS, EXIT_PREEMPTED


class _Renamed(argparse.Action):
    """A retired flag: refused, in one line, with its new spelling (hidden from --help)."""

    def __init__(self, option_strings, dest, new: str = "", why: str = "", **kwargs):
        super().__init__(option_strings, argparse.SUPPRESS, nargs="?", default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS)
        self.new, self.why = new, why

    def __call__(self, parser, namespace, values, option_string=None):
        raise CLIError(f"{option_string} is now {self.new} ({self.why}).")


def _renamed(parser, old: str, new: str, why: str) -> None:
    parser.add_argument(old, action=_Renamed, new=new, why=why)


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--threads takes a whole number >= 1, got {text!r}")
    return n


def _add_threads(parser, what: str) -> None:
    parser.add_argument("--threads", type=_threads, default=None, metavar="N",
                        help=f"CPU threads of torch ({what}; default: torch's, usually one per core)")


def _train_parser(sub) -> None:
    t = sub.add_parser(
        "train", help="train from a JSON/YAML config into a results folder",
        description=textwrap.fill(
            "Train from a JSON or YAML config into a results folder. Every key of the config is optional but "
            "the model section; --set overrides a key. On SIGTERM, SIGUSR1 or the --signal given, training "
            f"stops after the current update and exits with status {EXIT_PREEMPTED} (pre-empted): the newest "
            "checkpoint (the last epoch boundary) is intact and --resume continues the run bit-identically. "
            "Exit status: 0 done, 2 an error, 3 diverged, 75 pre-empted, 130 interrupted.", 79),
        epilog=run.config_help_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", default=None,
                   help="JSON or YAML config file (with --resume: only needed for a folder that holds no run yet)")
    t.add_argument("--out", help="results folder (default results/<config name>)")
    t.add_argument("--resume", metavar="RESULTS_DIR",
                   help="continue the run in RESULTS_DIR from its last checkpoint; a folder with no run yet (none, "
                        "or one killed at its start) starts CONFIG there, so one command starts and requeues a job")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config key, e.g. --set optimizer.lr=0.01 --set model.n_hidden=200 (VALUE is "
                        "YAML: 0.01, true, null, [784, 500]); checked as the file is and recorded in config.json. "
                        "With --resume only training.epochs, ais.* and samples.* may change")
    _add_threads(t, "--set threads=N: the config key, recorded in config.json")
    t.add_argument("--signal", default=None, metavar="SIGNAL",
                   help=f"also stop on this signal, e.g. SIGUSR2 ({' and '.join(DEFAULT_SIGNALS)} always stop: "
                        f"exit status {EXIT_PREEMPTED})")
    t.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2],
                   help="0 silent, 1 progress bars, 2 one line per epoch (default: 1 on a terminal, else 2)")


MODEL_HELP = ("a model file (.pt, .npz, .safetensors), a results folder of natural-bm train (its model.pt), or "
              "a shipped model's name (natural_bm.pretrained.list(): rbm500-cd25-anneal, dbm500-1000)")


def _logz_parser(sub) -> None:
    z = sub.add_parser("logz", help="estimate log Z and log-likelihoods of a saved model",
                       description="AIS (and exact, where feasible) log Z of a saved model, with the "
                                   "train/valid/test log-likelihoods (nats per image) they imply.")
    z.add_argument("model", help=MODEL_HELP)
    z.add_argument("--exact", action="store_true", help="also compute the exact log Z by enumeration")
    z.add_argument("--n-runs", type=int, default=100, help="AIS runs (default 100)")
    z.add_argument("--n-betas", type=int, default=None,
                   help="how many betas AIS anneals through (default: the 14,501 schedule)")
    _renamed(z, "--runs", "--n-runs", "the number of AIS runs, as ais.n_runs in a config")
    _renamed(z, "--betas", "--n-betas", "a count; AIS's betas are the schedule itself, as ais.n_betas in a config")
    z.add_argument("--reverse", action="store_true",
                   help="also run reverse AIS (with forward AIS a bracket on log Z, when the two do not cross) and "
                        "print the conservative log-likelihoods, ll - (logZ_reverse - logZ), beside the others")
    z.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    _add_threads(z, "printed with the results")
    z.add_argument("--parity", default="auto", choices=["auto", "0", "1"],
                   help="layers to anneal, the others summed out: 0 the even ones (v, h2, ...), 1 the odd ones; "
                        "auto: v for an RBM, the parity with fewer units for a DBM (h1 of 784-500-1000)")
    z.add_argument("--data", default=None, metavar="DATA",
                   help="the data of the base model and log-likelihoods: mnist, none, a .npy/.npz/.csv file (its "
                        "rows reported as test; for a run's model read as the run read its files: its npz key, "
                        "binarisation and standardisation), or a config file (its splits); default: the run's "
                        "config.json (a results folder, or beside the model file), a shipped model's data set, "
                        "else name one")
    z.add_argument("--kind", default="sampled", help="MNIST kind for the log-likelihoods (default sampled)")
    z.add_argument("--importance-samples", type=int, default=None, metavar="K",
                   help="also the log-likelihoods with log p*(v) importance-sampled from K draws of the even hidden "
                        "layers (DBMs: a stochastic lower bound, tighter than the mean-field bound)")
    z.add_argument("--posterior-ais", type=int, nargs=2, default=None, metavar=("N_CHAINS", "N_BETAS"),
                   help="also the test log-likelihood with log p*(v) from per-image AIS (N_CHAINS runs of N_BETAS "
                        "betas from the mean-field posterior; natural_bm.estimators.log_prob_ais): a check on the "
                        "importance-sampled figure; about 1e6 multiply-adds per image, chain and beta for 784-500-1000")
    z.add_argument("--posterior-rows", type=int, default=None, metavar="N",
                   help="only the first N test rows for --posterior-ais (default all)")
    z.add_argument("--raise", dest="raise_ais", type=int, nargs="*", default=None, metavar="N",
                   help="--raise [N_CHAINS N_BETAS]: also the test log-likelihood by RAISE (reverse annealing from "
                        "each test image, natural_bm.estimators.raise_log_likelihood; default 10 chains x 1000 "
                        "betas): conservative, and needs no log Z; costs N_CHAINS x N_BETAS sweeps per image")
    z.add_argument("--raise-rows", type=int, default=None, metavar="N",
                   help="only the first N test rows for --raise (default all)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--json", action="store_true", help="print one JSON object")


def _sample_parser(sub) -> None:
    s = sub.add_parser("sample", help="write a grid of samples from a saved model",
                       description="Markov chains from a saved model, one row per chain, one column per "
                                   "snapshot (the visible means E[v | the rest]).")
    s.add_argument("model", help=MODEL_HELP)
    s.add_argument("--out", required=True, help="image file to write: .png, .jpg or .jpeg")
    s.add_argument("--n-chains", type=int, default=20, help="rows: how many chains (default 20)")
    s.add_argument("--n-samples", type=int, default=10, help="columns: snapshots of each chain (default 10)")
    s.add_argument("--every", type=int, default=2000, help="sweeps between snapshots (default 2000)")
    _renamed(s, "--chains", "--n-chains", "a count; a sampler's chains are the states themselves")
    _renamed(s, "--snapshots", "--n-samples", "as samples.n_samples in a config; snapshot is the command that packs "
                                               "a run")
    s.add_argument("--sampler", default="gibbs", choices=["gibbs", "pt"],
                   help="gibbs: block Gibbs chains; pt: parallel tempering (natural_bm.sampling.ParallelTempering, "
                        "its ladder tuned first to swap rates of 0.2 to 0.3, then fixed), whose beta = 1 chains "
                        "cross between modes where Gibbs chains stay in one")
    s.add_argument("--shape", default=None, help="tile shape HxW (default: square)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    _add_threads(s, "")


def _other_parsers(sub) -> None:
    _sample_parser(sub)
    m = sub.add_parser("summary", help="print the summary of a results folder or a shipped model",
                       description="Print summary.txt of a results folder (rebuilt from log.csv if missing), or "
                                   "what natural_bm.pretrained records of a shipped model.")
    m.add_argument("results_dir", help="a results folder of natural-bm train, or a shipped model's name")
    i = sub.add_parser("inspect", help="print statistics of a saved model's weights and biases",
                       description="One row per parameter: for weight matrices the largest |w| and the norms "
                                   "of columns (each unit's incoming weights, what max-norm bounds) and rows; "
                                   "for biases their range and how many lie beyond --pinned (units nearly "
                                   "always on or off unless their input is large: in a layer that DBM AIS "
                                   "samples, they make the annealing path steep).")
    i.add_argument("model", help=MODEL_HELP)
    i.add_argument("--pinned", type=float, default=10.0, help="bias magnitude counted as pinned (default 10)")
    i.add_argument("--json", action="store_true", help="print one JSON list")
    e = sub.add_parser("export", help="write a model as .npz or .safetensors, readable without torch",
                       description="Write MODEL as a portable file (natural_bm.models.export_model): the tensors and "
                                   "a JSON header that rebuilds the model (class, layers, units, topology, data set, "
                                   "checksum, library version), readable with numpy alone (.npz) or any "
                                   "safetensors reader. natural_bm.load_model and every command here read it back.")
    e.add_argument("model", help=MODEL_HELP)
    e.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="npz or safetensors (default: from --out's suffix)")
    e.add_argument("--out", default=None,
                   help="the file to write (default: MODEL with the format's suffix; for a shipped model, its name "
                        "in the current folder)")
    e.add_argument("--dataset", default=None,
                   help="the data set it was trained on, recorded in the header (default: a shipped model's data "
                        "set, a run's data section)")
    n = sub.add_parser("snapshot", help="pack an unfinished run into one file, to resume elsewhere",
                       description="Pack what `natural-bm train --resume` needs of a results folder (config, "
                                   "logs, the newest intact checkpoint; before the first one, the newest "
                                   "pre-training checkpoints) into one tar file, written atomically. Unpack it "
                                   "into an empty folder (tar -xf FILE -C DIR) and resume there.")
    n.add_argument("results_dir")
    n.add_argument("file", help="the tar file to write")
    d = sub.add_parser("demo", help="train the MNIST demo RBM (make demo)",
                       description="Train a 200-hidden-unit RBM on MNIST with PCD-1 (about 2 minutes on 2 CPU "
                                   "cores) and bracket its log Z by forward and reverse AIS; writes a results "
                                   "folder with samples, filters, training curves and results.json.")
    d.add_argument("--out")
    d.add_argument("--epochs", type=int, default=None)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="natural-bm", description="Boltzmann machines: train, estimate log Z, sample.")
    p.add_argument("--version", action="version", version=f"natural-bm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _logz_parser(sub)
    _other_parsers(sub)
    return p
