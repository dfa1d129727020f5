"""A 784-500-2000 deep belief network on MNIST, as in Salakhutdinov & Murray (2008), section 4.

The bottom RBM is the shipped ``experiments/rbm_mnist_sm2008/models/rbm500_cd25.pt`` (784-500, CD-k with k
growing to 25, per-minibatch binarisation, 150 epochs; README results). The top RBM (500-2000) is trained
greedily on the bottom RBM's hidden probabilities of the once-sampled training images, binarised afresh
for every minibatch, with the bottom RBM's recipe (CD-k, k + 1 every 4 epochs; momentum 0.5 then 0.9;
learning rate 0.05 decaying per update; weight cost 2e-4) for ``--epochs`` epochs. Then:

* forward AIS (100 runs, 14,501 betas, data base model) and reverse AIS (from 1,000-sweep Gibbs chains
  started at training rows) on the top RBM;
* the variational lower bound on the test log-likelihood (``estimators.dbn_log_likelihood_bound``, 10
  samples of the recognition up-pass per image) with each log Z: forward and reverse.

Writes ``--out``: ``top_rbm.pt``, ``log.csv`` and ``results.json``.

Usage: python experiments/mnist_dbn/run.py [--epochs 30] [--out DIR] [--quick]
(--quick: 2,000 images, 2 epochs, 500 betas; minutes on 2 CPU cores, for testing the script)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from natural_bm import RBM, SGD
from natural_bm.callbacks import CSVLogger, GibbsStepsScheduler, MomentumRateScheduler
from natural_bm.datasets import load_mnist
from natural_bm.estimators import AIS, dbn_log_likelihood_bound
from natural_bm.io import atomic_write_text
from natural_bm.models.dbn import DBN

ROOT = Path(__file__).resolve().parents[2]
BOTTOM = ROOT / "experiments" / "rbm_mnist_sm2008" / "models" / "rbm500_cd25.pt"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="results/mnist_dbn")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_train, epochs, n_betas = (2000, 2, 500) if args.quick else (50000, args.epochs, None)
    data = load_mnist("sampled", n_train=n_train, n_valid=0 if args.quick else 10000)
    bottom = RBM.load(BOTTOM)
    with torch.no_grad():
        h_train = bottom.prob_h_given_v(torch.as_tensor(data.train))
    top = RBM(500, 2000, seed=args.seed).init_from_data(h_train)
    top.compile(SGD(0.05, momentum=0.5, decay=2e-5), "cd", l2=2e-4, k=1)
    callbacks = [MomentumRateScheduler(lambda epoch: 0.5 if epoch < 5 else 0.9),
                 GibbsStepsScheduler(lambda epoch: min(25, 1 + epoch // 4)), CSVLogger(out / "log.csv")]
    top.fit(h_train, batch_size=100, epochs=epochs, callbacks=callbacks, verbose=2, seed=args.seed, binarize=True)
    t_train = time.perf_counter() - t0
    top.save(out / "top_rbm.pt")

    base = torch.bernoulli(h_train[:10000], generator=torch.Generator().manual_seed(args.seed))
    ais = AIS(top, data=base, n_runs=100, n_betas=n_betas, seed=args.seed, progress=False)
    log_z, lo, hi = ais.estimate_log_error_Z()
    log_z_rev = ais.run_reverse(data=base, n_gibbs=1000)
    dbn = DBN([784, 500, 2000])
    dbn.rbms[0].load_state_dict(bottom.state_dict())
    dbn.rbms[1].load_state_dict(top.state_dict())
    test = data.test[:1000] if args.quick else data.test
    bound, se = dbn_log_likelihood_bound(dbn, test, log_z, n_samples=10, seed=args.seed)
    results = {
        "top_epochs": epochs, "logZ_top": log_z, "logZ_top_lo": lo, "logZ_top_hi": hi, "ais_ess": ais.ess,
        "logZ_top_reverse": log_z_rev, "ais_ess_reverse": ais.ess_reverse, "n_betas": len(ais.betas),
        "test_bound": bound, "test_bound_stderr": se, "test_bound_reverse": bound - (log_z_rev - log_z),
        "test_data": "MNIST test set binarised once (kind='sampled')", "bottom_rbm": str(BOTTOM.relative_to(ROOT)),
        "seconds_training": t_train, "seconds_total": time.perf_counter() - t0,
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
