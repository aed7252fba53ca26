"""Whose fault an error is: one base class for everything the caller's input caused.

Every error the library raises because of its input (a bad argument, audio file, token file,
model directory, config, manifest or command-line option) derives from :class:`InputError`,
itself a ``ValueError``.  The command line maps the one class to exit status 2
(:mod:`codec.exitcodes`); anything else that escapes a command is an internal error (status
1).  Library modules raise these classes and never import the exit-status table.

The specific classes live beside the code that raises them (``AudioError`` in
:mod:`codec.audio`, ``TokenFileError`` in :mod:`codec.tokenfile`, ``CheckpointError`` in
:mod:`codec.checkpoint`, ...); the few that several modules share live here.
"""

from __future__ import annotations


class InputError(ValueError):
    """The caller's input is wrong (not the library): the message names the input and the problem."""


class UsageError(InputError):
    """Bad input or usage found by a command itself (an option out of range, a refused output)."""


class CodesError(InputError):
    """Codes that this model cannot decode: wrong type, dtype or shape, out-of-range values,
    another model's codes, or lengths that do not fit them."""


__all__ = ["CodesError", "InputError", "UsageError"]
