"""The 784-500-1000 DBM of Salakhutdinov & Hinton (2009): see experiments/mnist_dbm.py.

Usage: python experiments/dbm_mnist_sh2009/run.py [--quick] [--out DIR] [--device cuda]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_dbm import main  # noqa: E402

if __name__ == "__main__":
    main()
