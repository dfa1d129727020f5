"""Run by tests/test_distributed.py under torchrun (2 gloo processes): one task, results to a file.

Usage: python -m torch.distributed.run --standalone --nproc-per-node N tests/distributed_worker.py TASK OUT
"""

import sys

import torch

torch.set_num_threads(1)

from natural_bm import distributed as dist  # noqa: E402
from natural_bm.estimators import AIS  # noqa: E402


def ais_model():
    from natural_bm import DBM, RBM

    g = torch.Generator().manual_seed(0)
    rbm = RBM(12, 7, dtype=torch.float64)
    dbm = DBM([10, 6, 5], dtype=torch.float64)
    with torch.no_grad():
        for m in (rbm, dbm):
            for p in m.parameters():
                p.copy_(0.7 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return rbm, dbm


def run_ais(compile_: bool, counters_only: bool = False) -> dict:
    """Forward and reverse AIS of a small RBM and DBM. ``counters_only``: compile=True with schedules
    shorter than one compiled call (8 steps for the RBM, 2 for the DBM), so every step runs the eager
    tail on the counters: the counter layout of the compiled path without compiling."""
    out = {}
    for name, m in zip(("rbm", "dbm"), ais_model(), strict=True):
        n_betas = {"rbm": 8, "dbm": 2}[name] if counters_only else 60
        a = AIS(m, n_runs=40, n_betas=n_betas, base="uniform", seed=5, progress=False,
                compile=compile_ or counters_only)
        a.run_logZ()
        a.run_reverse(n_gibbs=20)
        out[name] = {"log_w": a.log_w.clone(), "log_w_reverse": a.log_w_reverse.clone(), "logZ": a.logZ,
                     "distributed": a.distributed}
    return out


TASKS = {"ais_eager": lambda: run_ais(False), "ais_compiled": lambda: run_ais(True),
         "ais_counters": lambda: run_ais(False, counters_only=True)}


if __name__ == "__main__":
    task, out = sys.argv[1], sys.argv[2]
    dist.init_from_environment("gloo")
    result = TASKS[task]()
    result["world_size"] = dist.world_size()
    if dist.rank() == 0:
        torch.save(result, out)
    if dist.is_distributed():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
