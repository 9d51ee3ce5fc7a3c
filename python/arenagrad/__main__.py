"""``python -m arenagrad``: the same as the ``arenagrad`` console script."""

import sys

from .cli import main

sys.exit(main())
