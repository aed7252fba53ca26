"""The one commit/abort path for every output: a locked temporary file, renamed at the end.

An :class:`Output` is how every file this library writes comes to exist (token files, token
streams, audio, model directories):

1. the missing folders above it are created, and remembered;
2. a lock file beside it (``.NAME.codec-lock``, ``flock``) is taken, so a second process
   writing the same output is refused at once instead of silently replacing the first's
   result; the kernel drops the lock when a process dies, even by SIGKILL;
3. holding the lock, the temporary file of an earlier writer that died without cleaning up
   (SIGKILL, power loss) is removed;
4. the data goes to a new temporary file beside the output, ``.NAME.part.codec-tmp[SUFFIX]``:
   one fixed name per output, which the lock makes safe, so that step 3 is one ``unlink``
   rather than a listing of the folder (a listing per file made writing ``n`` files into one
   folder cost ``O(n^2)``; :func:`clear_stale` still lists, for the names older versions
   gave their temporary files, ``.NAME.<random>.codec-tmp*``);
5. :meth:`Output.commit` renames it over the output (``link`` when not replacing, so a file
   that appeared meanwhile is not clobbered); :meth:`Output.abort` removes it, the lock and
   the folders it created.  Leaving a ``with`` block without a commit aborts.

A reader (or a crash) never sees a half-written output: either the old file or the complete
new one.  Signals are turned into exceptions by :func:`codec.exitcodes.handle_signals`, so
SIGTERM and SIGHUP unwind through the abort like Ctrl-C does.  The finished file gets the
permissions ``open(path, "w")`` would have given it under the current umask.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_SUFFIX = ".codec-lock"
TEMP_MARK = ".codec-tmp"


class OutputError(OSError):
    """An output cannot be written: taken by another writer, a full disk, a failed rename."""


class OutputBusyError(OutputError):
    """Another process is writing the same output right now."""


class OutputExistsError(OutputError):
    """The output exists and may not be replaced (the command line adds how to replace it)."""


def default_mode() -> int:
    """Permissions of a newly created file under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class Output:
    """A file being written: locked, temporary until :meth:`commit`.

    Args:
        path: the destination.
        replace: allow replacing an existing file; otherwise an existing file,
            or one that appears before the commit, is an error.
        suffix: ending of the temporary name (libraries that pick a format by extension).
    """

    def __init__(self, path: str | Path, replace: bool = True, suffix: str = "") -> None:
        if str(path) == "":
            raise OutputError(errno.EINVAL, "empty output file name")
        self.path = Path(path)
        self.replace, self.suffix = replace, suffix
        self.tmp: Path | None = None
        self._lock: int | None = None
        self._created: list[Path] = []
        self._done = False

    def open(self) -> Path:
        """Create folders, take the lock, clear stale temporary files; returns the temporary path."""
        self._make_parents()
        try:
            self._take_lock()
            self.tmp = self._temp_path()
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()  # a dead writer's (we hold the lock, so no live one's)
            os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except BaseException:
            self.abort()
            raise
        return self.tmp

    def commit(self) -> Path:
        """Rename the temporary file to the output; returns the output path."""
        if self.tmp is None:
            raise OutputError(errno.EINVAL, "nothing was written", str(self.path))
        try:
            os.chmod(self.tmp, default_mode())
            if self.replace:
                os.replace(self.tmp, self.path)
            else:
                self._link_new()
        except BaseException:
            self.abort()
            raise
        self.tmp = None
        self._done = True
        self._release()
        return self.path

    def abort(self) -> None:
        """Remove the temporary file, the lock and the folders this output created."""
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.tmp = None
        self._release()
        if not self._done:
            for folder in reversed(self._created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty: another output may have landed there
            self._created = []

    def __enter__(self) -> Output:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.abort()

    # -- steps ----------------------------------------------------------------------------------

    def _make_parents(self) -> None:
        missing = []
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():
                    self.abort()
                    raise
                continue
            except BaseException:
                self.abort()
                raise
            self._created.append(folder)

    def _lock_path(self) -> Path:
        return self.path.parent / f".{self.path.name}{LOCK_SUFFIX}"

    def _take_lock(self) -> None:
        lock = self._lock_path()
        for _ in range(10):  # retry when the lock file was replaced between open and flock
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputBusyError(
                    errno.EBUSY, "another codec process is writing this output right now", str(self.path)
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock = fd
                return
            os.close(fd)
        raise OutputBusyError(errno.EBUSY, "could not lock the output", str(self.path))

    def _temp_path(self) -> Path:
        return self.path.parent / f".{self.path.name}.part{TEMP_MARK}{self.suffix}"

    def _clear_stale(self) -> None:
        """Temporary files of this output left by writers that died, under any name this
        library has used (we hold the lock)."""
        for stale in self.path.parent.glob(f".{_glob_escape(self.path.name)}.*{TEMP_MARK}*"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _link_new(self) -> None:
        try:
            os.link(self.tmp, self.path)
        except FileExistsError:
            raise OutputExistsError(errno.EEXIST, "already exists", str(self.path)) from None
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            if self.path.exists():  # no hard links here: the lock still keeps codec writers apart
                raise OutputExistsError(errno.EEXIST, "already exists", str(self.path)) from None
            os.replace(self.tmp, self.path)
            return
        self.tmp.unlink()

    def _release(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            self._lock_path().unlink()  # while still holding it, so no one takes a dead lock file
        os.close(self._lock)
        self._lock = None


def clear_stale(path: str | Path) -> None:
    """Remove what writers of ``path`` that died left behind (temporary files, a lock file),
    unless a writer is at work right now.  For outputs a run keeps rather than rewrites."""
    out = Output(path)
    if not out.path.parent.is_dir():
        return
    try:
        out._take_lock()
    except OutputBusyError:
        return
    try:
        out._clear_stale()
    finally:
        out._release()


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    Args:
        path: the destination (missing folders are created, and removed again on failure).
        write: fills the temporary file (it may reopen it by name).
        suffix: of the temporary name (libraries that pick a format from the extension need it).
    Returns: ``path``.  On any error or interrupt nothing is left behind.
    """
    with Output(path, replace=True, suffix=suffix) as out:
        write(out.tmp)
        return out.commit()


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[Path]:
    """Hold the lock of ``path`` (the one its writers take, see :class:`Output`) for the block.

    For a run that writes many files under one output folder: a second run naming the same
    folder (under any spelling: the path is resolved) is refused at once with
    :class:`OutputBusyError`, and the kernel releases the lock when the holder dies, even by
    SIGKILL, so a killed run never leaves it stuck.  Yields the resolved path.
    """
    guard = Output(Path(path).resolve())
    guard._make_parents()
    try:
        guard._take_lock()
    except BaseException:
        guard.abort()
        raise
    try:
        yield guard.path
    finally:
        guard._done = True  # the folders above stay: the run wrote into them
        guard._release()


@contextlib.contextmanager
def staged_dir(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """A folder (a model directory) that appears whole or not at all.

    Yields an empty temporary folder beside ``path`` (``.NAME.part.codec-tmp``) to fill; when
    the block ends without an error it becomes ``path``, else it is removed.  The lock of
    ``path`` (as for :class:`Output`) keeps a second writer out.  Replacing an existing folder
    (``replace=True``) takes two renames, the old folder out to ``.NAME.old.codec-tmp`` and
    the new one in: a writer killed between them leaves the old folder there, and the next
    writer of ``path`` puts it back before anything else.

    Raises:
        OutputError: ``path`` exists and ``replace`` is False, or another writer holds it.
    """
    target = Path(path)
    guard = Output(target, replace=replace)
    guard._make_parents()
    staging = target.parent / f".{target.name}.part{TEMP_MARK}"
    old = target.parent / f".{target.name}.old{TEMP_MARK}"
    try:
        guard._take_lock()
        if old.exists():  # a writer died after moving the old folder out
            _ = shutil.rmtree(old) if target.exists() else os.rename(old, target)
        shutil.rmtree(staging, ignore_errors=True)
        if target.exists() and not replace:
            raise OutputExistsError(errno.EEXIST, "already exists", str(target))
        staging.mkdir()
        yield staging
        if target.exists():
            if not replace:
                raise OutputExistsError(errno.EEXIST, "already exists", str(target))
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        guard.abort()
        raise
    guard._done = True
    guard._release()
