"""What a re-anchoring AIS costs and how close it lands: forward AIS of a few beta counts at every recorded epoch.

Runs ``AIS(model, data=base rows, n_runs=100, n_betas=B, seed=10_000 + epoch)`` (seeds apart from
``compare.py``'s references) at each epoch of a ``record.py`` trajectory and writes its log Z, band,
effective sample size and seconds per epoch and B, beside the reference file's values, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

from natural_bm import RBM
from natural_bm.datasets import load_mnist
from natural_bm.estimators import AIS
from natural_bm.io import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trajectory")
    ap.add_argument("--refs", required=True, help="compare.py's reference cache")
    ap.add_argument("--betas", type=int, nargs="*", default=[1000, 2000, 5000])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", "forward AIS", RuntimeWarning)  # the effective sample size is recorded
    traj = torch.load(args.trajectory, weights_only=False)
    refs = {int(k): v for k, v in json.loads(Path(args.refs).read_text()).items()}
    host = RBM(784, traj["config"]["hidden"])
    base = load_mnist("sampled", path=os.environ.get("NATURAL_BM_DATA"), n_valid=0, download=False).train[:10000]
    rows = []
    for e, rec in enumerate(traj["epochs"]):
        with torch.no_grad():
            for k, p in host.parameter_dict().items():
                p.copy_(rec["params"][k])
        row = {"epoch": e, "reference": refs.get(e)}
        for b in args.betas:
            t = time.perf_counter()
            ais = AIS(host, data=base, n_runs=100, n_betas=b, seed=10_000 + e, progress=False)
            z, lo, hi = ais.estimate_log_error_Z()
            row[str(b)] = {"logZ": z, "logZ_lo": lo, "logZ_hi": hi, "ess": ais.ess, "seconds": time.perf_counter() - t}
        rows.append(row)
        print(e, " ".join(f"{b}: {row[str(b)]['logZ'] - refs[e]['logZ']:+.2f} ({row[str(b)]['seconds']:.1f} s)"
                          for b in args.betas if e in refs), flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    atomic_write_text(Path(args.out), json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
        "git_commit": commit, "trajectory": traj["config"], "epochs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
