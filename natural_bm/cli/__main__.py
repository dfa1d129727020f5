"""``python -m natural_bm.cli``: the ``natural-bm`` command."""

import sys

from natural_bm.cli import main

sys.exit(main())
