"""One exception -> exit-status table for every ``codec`` command (encode, decode, info, train,
export, demo), and the signal handling that lets an interrupted run clean up.

=====  =====================================================================================
0      success
1      an internal error or an I/O error (a full disk, a failed write): one line naming the file
2      bad input or usage: one line ``codec: error: <file>: <problem>``
129    SIGHUP (the terminal went away)
130    SIGINT (Ctrl-C)
141    the reader of stdout went away (as a SIGPIPE death would give)
143    SIGTERM
=====  =====================================================================================

Commands only raise; :func:`run` turns what they raise into the line and the status: an
:class:`codec.errors.InputError` (the one base class of every error the user's input causes,
whichever module raised it) is status 2, anything else status 1.  SIGTERM
and SIGHUP are raised as :class:`Terminated` in the main thread, so every ``with Output``
block aborts (removing its temporary file) exactly as after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator

from codec.atomic import OutputError, OutputExistsError
from codec.errors import InputError
from codec.errors import UsageError as UsageError  # re-exported: the commands raise it from here

# What the command line adds to a library error it reports: how to get past it with an option
# (the library itself never names command-line options).
_ADVICE: dict[type[BaseException], str] = {OutputExistsError: " (use --force to replace it)"}

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGPIPE = 128 + signal.SIGPIPE


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; unwinds like KeyboardInterrupt so outputs are aborted."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(err: BaseException) -> int:
    """The exit status for an exception that ended a command."""
    if isinstance(err, Terminated):
        return 128 + err.signum
    if isinstance(err, KeyboardInterrupt):
        return 128 + signal.SIGINT
    if isinstance(err, BrokenPipeError):
        return EXIT_SIGPIPE
    if isinstance(err, InputError):
        return EXIT_BAD_INPUT
    return EXIT_ERROR


def message(err: BaseException) -> str:
    """One line for ``err`` (without the ``codec: `` prefix)."""
    if isinstance(err, (KeyboardInterrupt, Terminated)):
        return f"interrupted ({err})" if isinstance(err, Terminated) else "interrupted"
    if isinstance(err, OSError) and err.strerror and not isinstance(err, InputError):
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
        kind = "I/O error" if not isinstance(err, OutputError) else "error"
        return _one_line(f"{kind}: {text}{advice(err)}")
    text = str(err) or type(err).__name__
    if exit_status(err) == EXIT_ERROR:
        return _one_line(f"internal error: {type(err).__name__}: {text} (run with --debug for the traceback)")
    return _one_line(f"error: {text}{advice(err)}")


def advice(err: BaseException) -> str:
    """What the command line says after the library's message for ``err`` ("" for most errors)."""
    return next((text for cls, text in _ADVICE.items() if isinstance(err, cls)), "")


def report(err: BaseException) -> int:
    """Print the line for ``err`` on stderr; returns its exit status."""
    status = exit_status(err)
    if status == EXIT_SIGPIPE:
        # Keep the interpreter from flushing into the dead pipe at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return status
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr itself may be gone
        print(f"codec: {message(err)}", file=sys.stderr, flush=True)
    return status


def run(command: Callable[[], int | None], debug: bool = False) -> int:
    """Run ``command`` under the table and signal handling; returns the exit status.

    Args:
        command: the command's body; it returns 0/None or an exit status, or raises.
        debug: re-raise internal errors (for their traceback) instead of printing one line.
    """
    with handle_signals():
        try:
            return int(command() or 0)
        except BaseException as err:
            if isinstance(err, SystemExit):
                raise
            if debug and exit_status(err) == EXIT_ERROR and not isinstance(err, OSError):
                raise
            return report(err)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGINT: signal.getsignal(signal.SIGINT)}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, handler)


def _raise_terminated(signum: int, frame: object) -> None:
    # A second signal during the cleanup that the first one started is ignored.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def _one_line(text: str) -> str:
    # File names that are not UTF-8 hold surrogates, which no UTF-8 stream can print.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return " ".join(text.split())
