"""Swap rates of parallel tempering on the best MNIST RBM (rbm500-cd25-anneal): the fixed geometric ladder
(10 rungs, 1 to 0.1) against the self-tuning one (``ParallelTempering(adaptive=True).tune``), started from
the same ladder. Writes experiments/tempering/ladder_swap_rates.json.

Run: OMP_NUM_THREADS=1 python experiments/tempering/ladder_swap_rates.py (a few minutes on 1 thread).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import natural_bm.pretrained as pretrained
from natural_bm.datasets import load_mnist
from natural_bm.io import atomic_write_text
from natural_bm.rng import RandomSource
from natural_bm.sampling import ParallelTempering, geometric_betas

OUT = Path(__file__).with_name("ladder_swap_rates.json")
N_CHAINS, BURN_IN, MEASURE, TUNE_STEPS, TUNE_ROUNDS, SEED = 100, 100, 500, 200, 12, 0


def measure(pt: ParallelTempering, gen: RandomSource) -> list[float]:
    """Swap rates per pair over ``MEASURE`` steps of a fixed ladder, after ``BURN_IN`` steps."""
    pt.adaptive = False
    pt.run(BURN_IN, gen)
    pt.swaps_proposed.zero_()
    pt.swaps_accepted.zero_()
    pt.run(MEASURE, gen)
    return [round(float(r), 4) for r in pt.swap_rates()]


def main() -> None:
    model = pretrained.load("rbm500-cd25-anneal")
    data = load_mnist("sampled", path=os.environ.get("NATURAL_BM_DATA"), download=False)
    start = torch.as_tensor(data.test[:N_CHAINS], dtype=model.dtype)
    ladder = geometric_betas(10, 0.1)

    gen = RandomSource(SEED)
    fixed = ParallelTempering(model, ladder)
    fixed.init_chains(start, gen)
    fixed_rates = measure(fixed, gen)

    gen = RandomSource(SEED)
    tuned = ParallelTempering(model, ladder, adaptive=True)
    tuned.init_chains(start, gen)
    tuned.tune(TUNE_STEPS, TUNE_ROUNDS, gen)
    tune_steps = tuned.steps
    tuned_rates = measure(tuned, gen)

    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()
    out = {
        "_about": "Swap rates of neighbouring rungs (accepted / proposed) of parallel tempering on rbm500-cd25-anneal, "
                  f"{N_CHAINS} chains per rung started at the first {N_CHAINS} test images (sampled binarisation), "
                  f"measured over {MEASURE} steps after {BURN_IN} steps of burn-in, the ladder fixed while measured. "
                  "'adaptive' starts from the fixed ladder and is tuned by ParallelTempering.tune (rounds of "
                  f"{TUNE_STEPS} steps, placing the ladder anew from the measured rates) for target 0.25, band "
                  "[0.2, 0.3]; its hottest pair may swap more often (the rest of the length to beta 0.1).",
        "command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
        "date": datetime.date.today().isoformat(),
        "git_head": head,
        "model": "rbm500-cd25-anneal",
        "fixed": {"betas": [round(float(b), 6) for b in fixed.betas], "swap_rates": fixed_rates},
        "adaptive": {"betas": [round(float(b), 6) for b in tuned.betas], "swap_rates": tuned_rates,
                     "tuning_steps": tune_steps, "ladder_changes": tuned.ladder_changes,
                     "target": tuned.target, "band": list(tuned.band)},
    }
    atomic_write_text(OUT, json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
