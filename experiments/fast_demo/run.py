"""fast_demo: bars and stripes, exact log-likelihood (the optimum is -2.56 nats).

Usage: python experiments/fast_demo/run.py [--quick] [--out DIR]   (--quick is the same run: it is already fast)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import run_configs  # noqa: E402

if __name__ == "__main__":
    run_configs(Path(__file__).parent, {"bas_rbm8": "config.yaml"}, {"bas_rbm8": "config.yaml"})
