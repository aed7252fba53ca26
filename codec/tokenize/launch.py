"""Starting the local processes of ``codec tokenize --devices N`` before anything heavy is imported.

The command line knows the process count before it imports anything, so the first process
starts the node's other processes at once (the same command with ``LOCAL_RANK`` set, and
``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``WORLD_SIZE`` in the environment, as
``torchrun`` would) and every process imports PyTorch in parallel, then joins the group by
that ``env://`` rendezvous (:mod:`codec.tokenize.distributed`).

Nothing is started when a launcher already started the processes (SLURM's ``srun``,
``torchrun``, a hand-set ``LOCAL_RANK``) or for a single process.  The first process watches
the others: when one fails it stops the rest (after a grace period in which the first process
usually reports the error itself), so nobody waits for a peer that is gone.  Each process it
started watches it in turn (:func:`watch_parent`): if the first process dies (killed, out of
memory), the others end with one line saying so, rather than with the process group's error
or after waiting for it for hours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

# Environment variables of a launcher that starts every process itself (or of a process it started).
LAUNCHER_VARS = ("LOCAL_RANK", "SLURM_NTASKS", "WORLD_SIZE")
# Seconds the first process gets to end by itself once another process has failed.
GRACE_SECONDS = 5.0
# Set in the processes the first one starts: its process id (see watch_parent).
PARENT_VAR = "CODEC_TOKENIZE_PARENT"


def launched_externally(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether a launcher (or this module, in the first process) already started the processes."""
    if "LOCAL_RANK" in environ:
        return True
    return any(environ.get(v, "1").strip() not in ("", "1") for v in LAUNCHER_VARS[1:])


@dataclass
class LocalGroup:
    """The other local processes this process started (empty: none were started here)."""

    procs: list[subprocess.Popen] = field(default_factory=list)

    def wait(self, status: int) -> int:
        """Wait for every other process; returns ``status``, or the first failure among them."""
        for proc in self.procs:
            code = proc.wait()
            if status == 0 and code != 0:
                status = shell_status(code)
        return status

    def failed(self, wait: float = 0.0) -> tuple[int, int] | None:
        """``(local rank, return code)`` of the first process that ended with a failure, waiting
        up to ``wait`` seconds for one to end; ``None`` if none has."""
        deadline = time.monotonic() + wait
        while self.procs:
            for rank, proc in enumerate(self.procs, 1):
                if proc.poll() is not None and proc.returncode:
                    return rank, proc.returncode
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        """Kill the other processes (they may be waiting in a collective for a peer that is gone)."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGKILL)


def start_local_processes(argv: Sequence[str], devices: int, num_nodes: int) -> LocalGroup:
    """Start local ranks ``1 .. devices - 1`` running ``codec`` with ``argv`` (see the module docstring).

    Args:
        argv: the ``codec`` command's arguments (``["tokenize", ...]``), passed on unchanged.
        devices: processes per node.
        num_nodes: nodes (``NODE_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` come from the
            environment on several nodes, as torchrun sets them).
    Returns: the started processes (none when nothing is to be started here).
    """
    if devices == 1 or launched_externally():
        return LocalGroup()
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    os.environ.setdefault("NODE_RANK", "0")
    os.environ["WORLD_SIZE"] = str(devices * num_nodes)
    os.environ["LOCAL_RANK"] = "0"
    group = LocalGroup()
    command = [sys.executable, "-m", "codec.cli", *argv]
    for local_rank in range(1, devices):
        env = {**os.environ, "LOCAL_RANK": str(local_rank), PARENT_VAR: str(os.getpid())}
        group.procs.append(subprocess.Popen(command, env=env))
    threading.Thread(target=_watch, args=(group,), name="tokenize-watch", daemon=True).start()
    return group


def free_port() -> int:
    """A TCP port free on this machine now (the rendezvous of a single-node group)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _watch(group: LocalGroup) -> None:
    """Daemon thread of the first process: a failed peer ends the whole group."""
    while True:
        failed = group.failed()
        if failed:
            time.sleep(GRACE_SECONDS)  # the first process usually ends by itself meanwhile
            group.stop()
            with contextlib.suppress(OSError, ValueError):  # stderr may be gone
                print(f"codec: error: {failure(*failed)}", file=sys.stderr, flush=True)
            os._exit(shell_status(failed[1]))
        if all(p.returncode is not None for p in group.procs):
            return
        time.sleep(0.5)


def watch_parent() -> None:
    """In a process the first one started: end this one, with one line, when the first is gone.

    Once the first process has died, this one can only fail: its next collective raises the
    group's error, or it waits for a rendezvous that never comes.  What it leaves is what a
    SIGKILL leaves, which the next run cleans up.
    """
    if os.environ.get(PARENT_VAR) != str(os.getppid()):
        return  # not started by a first process (or it is gone already: the run fails anyway)
    threading.Thread(target=_watch_parent, name="tokenize-parent", daemon=True).start()


def parent_gone(wait: float = 0.0) -> bool:
    """Whether this process was started by a first process that has ended since (waiting up to
    ``wait`` seconds for it to end); False in any other process."""
    parent = os.environ.get(PARENT_VAR, "")
    if not parent.isdigit():
        return False
    deadline = time.monotonic() + wait
    while os.getppid() == int(parent):  # a dead parent's children are handed to another process
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def orphaned() -> str:
    """The one line of a process whose first process is gone."""
    me = os.environ.get("LOCAL_RANK", "?")
    return f"local rank {me}: local rank 0, which started it, ended first; rerun the same command to finish"


def _watch_parent() -> None:
    while not parent_gone():
        time.sleep(0.5)
    time.sleep(1.0)  # the main thread may be reporting the group's error: let it say this itself
    with contextlib.suppress(OSError, ValueError):
        print(f"codec: error: {orphaned()}", file=sys.stderr, flush=True)
    os._exit(1)


def failure(rank: int, returncode: int) -> str:
    """What happened to local rank ``rank`` (a failed ``returncode``), for the one error line."""
    how = (
        f"was killed by {_signal_name(-returncode)}"
        if returncode < 0
        else f"failed (exit status {returncode})"
    )
    return f"local rank {rank} {how}; rerun the same command to finish"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def shell_status(returncode: int) -> int:
    """A non-zero ``Popen.returncode`` as a shell reports it (killed by signal N: 128 + N)."""
    return returncode if returncode > 0 else 128 - returncode
