"""Re-run the README's quick rows over several seeds and print them beside the README's numbers.

A quick row is deterministic on one machine but not across machines: CPU
kernels sum in different orders, and training amplifies the difference (the
784x20 model of ``check_ais.py`` has exact log Z 177.399 on one machine and
177.513 on another). So each quick row is reported as the mean ± standard
deviation over seeds, and that spread is the tolerance: a re-run agrees with
the README when

    |mean here - README mean| <= 2 * max(sd here, sd README, 0.01)

The README's numbers, with the commit, machine and date that produced them,
live in ``scripts/quick_rows.json``; ``--write`` replaces that file's rows
with this run's (for the rows run) and prints them as README table rows.

Rows (value: what is averaged, nats):

* ``fast_demo``: RBM 9-8 on bars and stripes, exact test log-likelihood;
* ``rbm20_cd1``: RBM 784-20, CD-1, 5 epochs, exact test log-likelihood;
* ``rbm500_cd1``: RBM 784-500, CD-1, 5 epochs, test log-likelihood by forward AIS;
* ``dbm_quick``: DBM 784-500-1000 quick run, test lower bound by forward AIS;
* ``demo``: ``make demo``'s RBM 784-200, test log-likelihood by forward AIS;
* ``check_ais_784x20``: ``check_ais.py``'s MNIST 784x20 row, exact log Z (and AIS error).

About 9 minutes a seed on 2 CPU cores, most of it the DBM and the demo.

Usage: python scripts/reproduce_quick.py [--seeds 3] [--only fast_demo,rbm20_cd1] [--out DIR] [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS_FILE = Path(__file__).with_name("quick_rows.json")
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "scripts"))  # (bench_common, also when a test loads this file)
from bench_common import machine_description, short_commit  # noqa: E402


def _config_row(config: str, epochs: int | None, key: str) -> Callable[[int, Path], dict]:
    def run(seed: int, out: Path) -> dict:
        from natural_bm import run as runner

        cfg = runner.read_config(ROOT / config)
        cfg["seed"] = seed
        if epochs is not None:
            cfg["training"]["epochs"] = epochs
        res = runner.train(cfg, out, verbose=0)
        return {"value": res[key], "logZ": res["logZ"]}

    return run


def _dbm_quick(seed: int, out: Path) -> dict:
    import mnist_dbm

    res = mnist_dbm.run(mnist_dbm.QUICK, out, seed=seed, verbose=0)
    return {"value": res["test_ll_bound"], "logZ": res["logZ"]}


def _demo(seed: int, out: Path) -> dict:
    from natural_bm import demo

    folder = demo.run(out, seed=seed)
    res = json.loads((folder / "results.json").read_text())
    return {"value": res["test_ll"], "logZ": res["logZ"]}


def _check_ais_784x20(seed: int, out: Path) -> dict:
    from natural_bm import RBM, SGD
    from natural_bm.datasets import load_mnist
    from natural_bm.estimators import AIS, log_partition_exact

    data = load_mnist("sampled", n_train=10_000, n_valid=0).train
    m = RBM(784, 20, seed=seed).init_from_data(data).compile(SGD(0.05, momentum=0.5), "cd")
    m.fit(data, batch_size=100, epochs=5, verbose=0, seed=seed)
    exact = log_partition_exact(m, progress=False)
    z = AIS(m, data=data, n_runs=100, seed=seed, progress=False).run_logZ()
    return {"value": exact, "ais_error": z - exact}


ROWS: dict[str, tuple[str, Callable[[int, Path], dict]]] = {
    "fast_demo": ("RBM 9-8, bars and stripes, exact test LL",
                  _config_row("experiments/fast_demo/config.yaml", None, "test_ll_exact")),
    "rbm20_cd1": ("RBM 784-20, CD-1 5 epochs, exact test LL",
                  _config_row("experiments/rbm_mnist_sm2008/rbm20_cd1.yaml", 5, "test_ll_exact")),
    "rbm500_cd1": ("RBM 784-500, CD-1 5 epochs, test LL (forward AIS)",
                   _config_row("experiments/rbm_mnist_sm2008/rbm500_cd1.yaml", 5, "test_ll")),
    "dbm_quick": ("DBM 784-500-1000 quick, test LL bound (forward AIS)", _dbm_quick),
    "demo": ("make demo: RBM 784-200 PCD-1 30 epochs, test LL (forward AIS)", _demo),
    "check_ais_784x20": ("check_ais MNIST 784x20 CD-1 5 epochs, exact log Z", _check_ais_784x20),
}


def summarize(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def agrees(mean: float, sd: float, ref_mean: float, ref_sd: float) -> bool:
    """Whether a re-run agrees with a reference row: within twice the larger seed spread (at least 0.01)."""
    return abs(mean - ref_mean) <= 2 * max(sd, ref_sd, 0.01)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--only", help=f"comma-separated rows (default all: {','.join(ROWS)})")
    parser.add_argument("--out", help="results folder (default: a temporary folder)")
    parser.add_argument("--write", action="store_true", help=f"store this run's rows in {ROWS_FILE.name}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(ROWS)
    unknown = sorted(set(names) - set(ROWS))
    if unknown:
        parser.error(f"--only: unknown row(s) {unknown}; choose from {list(ROWS)}")
    reference = json.loads(ROWS_FILE.read_text()) if ROWS_FILE.is_file() else {"rows": {}}
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="reproduce_quick-"))
    stamp = {"commit": short_commit(), "machine": machine_description(), "date": time.strftime("%Y-%m-%d"),
             "seeds": args.seeds}
    measured = {}
    for name in names:
        results = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            res = ROWS[name][1](seed, out / f"{name}-seed{seed}")
            res["seconds"] = time.perf_counter() - t0
            results.append(res)
            print(f"{name} seed {seed}: {res['value']:.3f} ({res['seconds']:.0f} s)", flush=True)
        mean, sd = summarize([r["value"] for r in results])
        measured[name] = {"mean": round(mean, 3), "sd": round(sd, 3), "values": [round(r["value"], 3) for r in results],
                          "seconds_per_seed": round(statistics.fmean(r["seconds"] for r in results), 1)}
        if "ais_error" in results[0]:
            measured[name]["ais_error"] = [round(r["ais_error"], 3) for r in results]
    print("\n| row | what | README (mean ± sd over seeds) | here | difference | agrees |")
    print("|---|---|---|---|---|---|")
    for name, m in measured.items():
        ref = reference["rows"].get(name)
        if ref is None:
            ref_text, diff, ok = "-", "-", "-"
        else:
            ref_text = f"{ref['mean']:.2f} ± {ref['sd']:.2f}"
            diff = f"{m['mean'] - ref['mean']:+.2f}"
            ok = "yes" if agrees(m["mean"], m["sd"], ref["mean"], ref["sd"]) else "NO"
        print(f"| {name} | {ROWS[name][0]} | {ref_text} | {m['mean']:.2f} ± {m['sd']:.2f} | {diff} | {ok} |")
    if args.write:
        from natural_bm.io import atomic_write_text

        for name, m in measured.items():
            reference["rows"][name] = {**m, **stamp}
        atomic_write_text(ROWS_FILE, json.dumps(reference, indent=2) + "\n")
        print(f"\nwrote {ROWS_FILE}")


if __name__ == "__main__":
    main()
