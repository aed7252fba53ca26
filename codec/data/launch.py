"""Starting the local processes of ``codec tokenize --devices N`` before anything heavy is imported.

The command line knows the process count before it imports anything, so the first process
starts the node's other processes at once (the same command with ``LOCAL_RANK`` set, and
``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``WORLD_SIZE`` in the environment, as
``torchrun`` would) and every process imports PyTorch in parallel, then joins the group by
that ``env://`` rendezvous (:mod:`codec.data.distributed`).

Nothing is started when a launcher already started the processes (SLURM's ``srun``,
``torchrun``, a hand-set ``LOCAL_RANK``) or for a single process.  The first process watches
the others: when one fails it stops the rest (after a grace period in which the first process
usually reports the error itself), so nobody waits for a peer that is gone.
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
        group.procs.append(subprocess.Popen(command, env={**os.environ, "LOCAL_RANK": str(local_rank)}))
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
