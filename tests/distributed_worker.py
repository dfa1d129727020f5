"""Run by tests/test_distributed.py under torchrun (2 gloo processes): one task, results to a file.

Usage: python -m torch.distributed.run --standalone --nproc-per-node N tests/distributed_worker.py TASK OUT

or, to run ``natural-bm`` on every rank with a fault injected into one (tests/test_lost_rank.py):
python -m torch.distributed.run ... tests/distributed_worker.py cli FAULT PID_DIR -- natural-bm arguments

FAULT is ``RANK:UPDATE:SIGNAL`` (e.g. ``1:13:KILL``): rank RANK sends itself SIGSIGNAL when its data-parallel
update number UPDATE (counted from 1) all-reduces its gradient (``all_reduce_sum`` of 3 or more tensors: the
gradients and the loss; not the one-number stop flag of pre-emption), after writing the time to
PID_DIR/fault.time; every rank writes its process id to PID_DIR/rank<r>.pid at start. ``none`` injects nothing.
"""

import os
import signal
import sys
import time

import torch

from natural_bm import distributed as dist
from natural_bm.estimators import AIS, EngineOptions


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
                engine=EngineOptions(jit_compile=compile_ or counters_only))
        a.run_logZ()
        a.run_reverse(n_gibbs=20)
        out[name] = {"log_w": a.log_w.clone(), "log_w_reverse": a.log_w_reverse.clone(), "logZ": a.logZ,
                     "distributed": a.distributed}
    return out


TASKS = {"ais_eager": lambda: run_ais(False), "ais_compiled": lambda: run_ais(True),
         "ais_counters": lambda: run_ais(False, counters_only=True)}


def train_data():
    import numpy as np

    return (np.random.default_rng(3).random((120, 8)) < np.linspace(0.2, 0.8, 8)).astype(np.float64)


def build(kind: str):
    from natural_bm import DBM, RBM, SGD

    if kind == "rbm":
        return RBM(8, 5, seed=1, dtype=torch.float64).compile(SGD(0.05, momentum=0.5), "pcd", k=2, n_chains=10,
                                                             jit_compile=False)
    if kind == "pt":
        return RBM(8, 5, seed=1, dtype=torch.float64).compile(SGD(0.05, momentum=0.5), "pt", k=1, n_chains=10,
                                                             n_temperatures=3, min_beta=0.3)
    return DBM([8, 5, 4], seed=1, dtype=torch.float64).compile(SGD(0.05, momentum=0.5), "mfpcd", k=1, n_chains=10,
                                                               mf_steps=3, centering={"rate": 0.05},
                                                               sparsity={"target": 0.2, "cost": 0.05}, max_norm=0.15)


def train(resume_dir: str | None = None) -> dict:
    """An RBM (PCD), an RBM trained by parallel tempering and a centred DBM (mean-field PCD, with sparsity
    targets and max-norm), 4 epochs of
    batches of 20; with ``resume_dir`` saved after 2 epochs, loaded and continued."""
    from natural_bm.models import load_model

    x, out = train_data(), {}
    for kind in ("rbm", "pt", "dbm"):
        m = build(kind)
        if resume_dir is None:
            m.fit(x, batch_size=20, epochs=4, verbose=0, seed=7)
        else:
            m.fit(x, batch_size=20, epochs=2, verbose=0, seed=7)
            path = f"{resume_dir}/{kind}.pt"
            m.save(path)
            dist.barrier()
            m = load_model(path)
            m.fit(x, batch_size=20, epochs=4, initial_epoch=2, verbose=0, seed=7)
        out[kind] = {name: getattr(m, name).clone() for name in m.param_names}
        out[kind]["chains"] = m.trainer.model_chains()
        out[kind]["loss"] = m.history.history["loss"]
        if kind == "pt":
            out[kind]["swap_rate_0"] = m.history.history["swap_rate_0"]
    return out


TASKS.update({"train": lambda: train(), "train_resume": lambda: train(sys.argv[3])})


def cli(fault: str, pid_dir: str, argv: list[str]) -> int:
    """``natural-bm ARGV`` on this rank, with ``fault`` injected (see the module docstring)."""
    from natural_bm import cli as natural_bm_cli

    rank_ = int(os.environ["RANK"])
    with open(f"{pid_dir}/rank{rank_}.pid", "w") as f:
        f.write(f"{os.getpid()}\n")
    if fault != "none":
        who, update, name = fault.split(":")
        if int(who) == rank_:
            reduce, calls = dist.all_reduce_sum, [0]

            def faulty(tensors):
                calls[0] += len(tensors) >= 3
                if len(tensors) >= 3 and calls[0] == int(update):
                    with open(f"{pid_dir}/fault.time", "w") as f:
                        f.write(f"{time.time()!r}\n")
                    os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
                return reduce(tensors)

            dist.all_reduce_sum = faulty
    return natural_bm_cli.main(argv)


if __name__ == "__main__":
    # one thread per rank, set here and not at import: tests/test_distributed.py imports this module for the
    # single-process references (it pins those to one thread with its own fixture), and a module-level call
    # would leave the whole test session on one thread
    torch.set_num_threads(1)
    if sys.argv[1] == "cli":
        sys.exit(cli(sys.argv[2], sys.argv[3], sys.argv[sys.argv.index("--") + 1:]))
    task, out = sys.argv[1], sys.argv[2]
    dist.init_from_environment("gloo")
    result = TASKS[task]()
    result["world_size"] = dist.world_size()
    if dist.rank() == 0:
        torch.save(result, out)
    if dist.is_distributed():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
