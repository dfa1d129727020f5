"""Shared runner of the experiment scripts: run configs, collect results.json into a table."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from natural_bm import run as runner
from natural_bm.io import atomic_write_text


def run_configs(folder: Path, full: dict[str, str], quick: dict[str, str], overrides: dict | None = None) -> None:
    """Run each named config of ``folder`` (quick or full set) into ``--out``/<name>; print a table."""
    parser = argparse.ArgumentParser(description=f"experiment {folder.name}")
    parser.add_argument("--quick", action="store_true", help="short settings (minutes on 2 CPU cores)")
    parser.add_argument("--out", help="results folder (default results/<experiment>-<time>)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", help="comma-separated run names to run (default: all of the set)")
    args = parser.parse_args()
    runs = quick if args.quick else full
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - set(runs))
        if unknown:
            parser.error(f"--only: unknown run(s) {unknown}; choose from {sorted(runs)}")
        runs = {k: v for k, v in runs.items() if k in names}
    out = Path(args.out or Path("results") / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    rows = []
    for name, cfg_file in runs.items():
        cfg = runner.read_config(folder / cfg_file)
        cfg["device"] = args.device
        for section, values in (overrides or {}).get(name, {}).items():
            cfg[section].update(values)
        t0 = time.perf_counter()
        res = runner.train(cfg, out / name, verbose=2)
        res["seconds"] = time.perf_counter() - t0
        res["name"] = name
        rows.append(res)
    atomic_write_text(out / "results.json", json.dumps(rows, indent=2) + "\n")
    nan = float("nan")
    print("| run | epochs | log Z (forward AIS) | test log-likelihood (nats) | log Z (reverse AIS) | "
          "test log-likelihood, reverse (conservative when they bracket) | bracket | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['epochs_run']} | {r.get('logZ', nan):.2f} | "
              f"{r.get('test_ll', nan):.2f} ± {r.get('test_ll_stderr', nan):.2f} | "
              f"{r.get('logZ_reverse', nan):.2f} | {r.get('test_ll_reverse', nan):.2f} | "
              f"{'yes' if r.get('brackets') else ('crossed' if 'brackets' in r else '-')} | {r['seconds']:.0f} |")
    print(f"results in {out.resolve()}")
