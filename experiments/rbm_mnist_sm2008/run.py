"""RBMs on MNIST as in Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks".

* rbm20_cd1: 20 hidden units, CD-1; log Z exact (and by AIS, to compare).
* rbm500_cd1 / cd3 / cd25, rbm500_pcd: 500 hidden units; log Z by AIS (100 runs, 14,501 betas).
  rbm500_cd25 follows Salakhutdinov's code: data binarised afresh per minibatch, k from 1 to 25,
  momentum 0.5 then 0.9, a decaying learning rate, 150 epochs (about an hour on 2 CPU cores).
  rbm500_pcd_decay: PCD-1 with a learning rate decaying per update, per-minibatch binarisation,
  200 epochs (about 15 minutes on 2 CPU cores); reverse AIS from its persistent chains.

Data: MNIST binarised once stochastically (kind "sampled"), test log-likelihood
on the sampled test set. SM2008 report -86.34 nats for CD-25 (their
binarisation: stochastic, as ours, but redrawn in their code).

--quick: 20 hidden units for 5 epochs and 500 hidden units with CD-1 for 5
epochs (about 5 minutes on 2 CPU cores). Full: the five runs, 100 epochs
each (use a GPU: --device cuda).

Usage: python experiments/rbm_mnist_sm2008/run.py [--quick] [--out DIR] [--device cuda]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import run_configs  # noqa: E402

FULL = {"rbm20_cd1": "rbm20_cd1.yaml", "rbm500_cd1": "rbm500_cd1.yaml", "rbm500_cd3": "rbm500_cd3.yaml",
        "rbm500_cd25": "rbm500_cd25.yaml", "rbm500_pcd": "rbm500_pcd.yaml",
        "rbm500_pcd_decay": "rbm500_pcd_decay.yaml"}
QUICK = {"rbm20_cd1": "rbm20_cd1.yaml", "rbm500_cd1": "rbm500_cd1.yaml"}
QUICK_OVERRIDES = {"rbm20_cd1": {"training": {"epochs": 5}}, "rbm500_cd1": {"training": {"epochs": 5}}}

if __name__ == "__main__":
    quick = "--quick" in sys.argv
    run_configs(Path(__file__).parent, FULL, QUICK, QUICK_OVERRIDES if quick else None)
