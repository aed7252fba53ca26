"""Atomic file writes: a temporary file in the destination's folder, renamed over it at the end.

A reader (or a crash) never sees a half-written output: either the old file or the complete new
one.  ``tempfile.mkstemp`` creates files readable by the owner only; the finished file gets the
permissions an ordinary ``open(path, "w")`` would have given it under the current umask.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def default_mode() -> int:
    """Permissions of a newly created file under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty temporary file beside ``path`` (hidden, named after it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the default permissions and rename it over ``path``."""
    os.chmod(tmp, default_mode())
    os.replace(tmp, path)


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    Args:
        path: the destination; its folder must exist.
        write: fills the temporary file (it may reopen it by name).
        suffix: of the temporary name (libraries that pick a format from the extension need it).
    Returns: ``path``.  On any error or interrupt the temporary file is removed.
    """
    path = Path(path)
    tmp = temp_path(path, suffix)
    try:
        write(tmp)
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
