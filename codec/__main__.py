"""``python -m codec``: the command line (see :mod:`codec.cli`)."""

import sys

from codec.cli import main

sys.exit(main())
