"""``python -m codec``: the command line (see :mod:`codec.cli`)."""

from codec.cli import entry

entry()
