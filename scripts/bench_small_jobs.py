"""Small jobs must be fast: ``natural-bm logz`` of a 9x8 bars-and-stripes RBM from a cold process.

Saves a random 9x8 RBM with the fast_demo config beside it (so ``logz``
loads the bars-and-stripes splits), then times whole ``natural-bm logz
--exact`` processes (Python start, imports, data, AIS with 100 runs x 14,501
betas, exact log Z, likelihoods), ``--repeats`` times, and prints a table
with the median. Target: under 5 s. ``--compile`` forces the compiled AIS
step, to show what "auto" saves.

Usage: python scripts/bench_small_jobs.py [--repeats 3] [--compile] [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from natural_bm import RBM
from natural_bm.io import print_and_save
from natural_bm.run import read_config

ROOT = Path(__file__).resolve().parents[1]


def make_model(folder: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    m = RBM(9, 8)
    with torch.no_grad():
        m.W.copy_(torch.randn(9, 8, generator=g))
        m.vbias.copy_(torch.randn(9, generator=g))
        m.hbias.copy_(torch.randn(8, generator=g))
    cfg = read_config(ROOT / "experiments" / "fast_demo" / "config.yaml")
    (folder / "config.json").write_text(json.dumps(cfg))
    return m.save(folder / "model.pt")


def time_logz(model: Path, compile_: bool) -> float:
    code = ("import sys; from natural_bm import cli; "
            + ("import natural_bm.estimators.ais as a; orig = a.AIS.__init__; "
               "a.AIS.__init__ = lambda self, *p, **k: orig(self, *p, **{**k, 'compile': True}); "
               if compile_ else "")
            + "sys.exit(cli.main(sys.argv[1:]))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, "logz", str(model), "--exact", "--json"], check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time the forced compiled AIS step")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(Path(tmp))
        rows = [("natural-bm logz --exact, AIS 'auto' (eager here)", False)]
        if args.compile:
            rows.append(("the same, AIS compiled", True))
        lines = ["| job (9x8 RBM, 100 runs x 14,501 betas, exact log Z) | median s | runs (s) |", "|---|---|---|"]
        for name, compile_ in rows:
            times = [time_logz(model, compile_) for _ in range(args.repeats)]
            lines.append(f"| {name} | {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} |")
    print_and_save("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
