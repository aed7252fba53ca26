"""Shared helpers of the speed, streaming and memory benchmarks.

Timing statistics, thread control, a description of the machine and of its load, Markdown
tables, and the rewrite of one section of ``benchmarks/RESULTS.md`` (other sections, such as
the kernel benchmarks', are left byte for byte as they are).

It lives in the package (``from codec.bench import harness``) so the scripts under
``benchmarks/`` import it like any other module, without touching ``sys.path``; they are run
from the repository root, whose ``benchmarks/RESULTS.md`` is the default target.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

RESULTS_PATH = Path("benchmarks") / "RESULTS.md"  # relative to the repository root, the scripts' cwd


# -- timing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Summary of repeated wall-clock measurements, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    def percentile(self, q: float) -> float:
        """Linear-interpolated percentile ``q`` in [0, 100] (numpy's default definition)."""
        data = sorted(self.samples)
        pos = (len(data) - 1) * q / 100.0
        lo = int(pos)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def time_calls(fn: Callable[[], object], repeats: int, warmup: int) -> Timing:
    """Call ``fn`` ``warmup`` times untimed (allocator, caches, lazy init), then ``repeats`` times timed."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(tuple(samples))


@dataclass
class FrameLatency:
    """Per-frame streaming compute of one model at one setting.

    Attributes:
        model: display name.
        threads: intra-op CPU threads (0 for a GPU row).
        frame_seconds: audio duration of one frame (the real-time budget of a step).
        encode, decode: per-frame compute times (``None``: not measured).
        algorithmic_seconds: frame duration plus decoder lookahead.
        note: what exactly was timed, when it differs from a stateful one-frame step.
    """

    model: str
    threads: int
    frame_seconds: float
    encode: Timing | None
    decode: Timing | None
    algorithmic_seconds: float
    note: str = ""


def time_frames(
    encode: Callable[[int], object], decode: Callable[[object], object], frames: int, warmup: int
) -> tuple[Timing, Timing]:
    """Time a stream frame by frame: ``codes = encode(i)`` then ``decode(codes)``, interleaved
    as in a live duplex pipeline.  The first ``warmup`` frames are run but not timed."""
    enc, dec = [], []
    for i in range(warmup + frames):
        t0 = time.perf_counter()
        codes = encode(i)
        t1 = time.perf_counter()
        decode(codes)
        t2 = time.perf_counter()
        if i >= warmup:
            enc.append(t1 - t0)
            dec.append(t2 - t1)
    return Timing(tuple(enc)), Timing(tuple(dec))


def set_threads(n: int) -> None:
    """Intra-op threads for everything timed next (ours and the peers alike)."""
    torch.set_num_threads(n)
    if torch.get_num_threads() != n:
        raise RuntimeError(f"torch.set_num_threads({n}) left {torch.get_num_threads()} threads")


# -- machine and load ---------------------------------------------------------------------------


def cpu_name() -> str:
    """CPU model, with ``virtual machine`` and ``AVX-512`` when ``/proc/cpuinfo`` says so."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    extras = [x for x, flag in (("virtual machine", "hypervisor"), ("AVX-512", "avx512f")) if flag in flags]
    return ", ".join([name or platform.machine(), *extras])


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``"0.12 0.30 0.41"`` (``"n/a"`` where unsupported)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def wait_for_quiet(max_load: float | None, timeout_s: float = 3600.0, poll_s: float = 15.0) -> str:
    """Wait until the 1-minute load average is below ``max_load`` (other jobs share the CPU).

    Returns a line for the report saying whether the machine got quiet or the wait timed out.
    """
    if max_load is None:
        return "no wait for a quiet machine"
    start = time.monotonic()
    while os.getloadavg()[0] >= max_load:
        if time.monotonic() - start > timeout_s:
            return f"waited {timeout_s:.0f} s for load < {max_load}, in vain: measured under load"
        time.sleep(poll_s)
    return f"started once the 1-minute load was below {max_load} (after {time.monotonic() - start:.0f} s)"


def _busy_seconds() -> float | None:
    """CPU-seconds all processes have spent busy since boot (``/proc/stat``), or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Conditions:
    """Load on the machine during a measurement: load averages and other processes' CPU share.

    Other jobs' share = (CPU time used by the whole machine - by this process and its children)
    / (wall time x cores): the part of the machine the measurement did not have to itself.
    """

    def __init__(self, waited: str) -> None:
        self.waited = waited
        self.load_before = load_average()
        self.wall, self.busy, self.own = time.monotonic(), _busy_seconds(), _own_seconds()

    def line(self) -> str:
        busy = _busy_seconds()
        share = "n/a"
        if busy is not None and self.busy is not None:
            wall = max(time.monotonic() - self.wall, 1e-9)
            others = (busy - self.busy) - (_own_seconds() - self.own)
            share = f"{max(others, 0.0) / (wall * (os.cpu_count() or 1)):.0%}"
        return (
            f"- Conditions: load average (1/5/15 min) {self.load_before} before, {load_average()} after; "
            f"other processes used {share} of the machine's CPU time during the run; {self.waited}"
        )


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_lines(extra_packages: Sequence[str] = ()) -> list[str]:
    """Bullet lines naming the machine, the software versions and the date."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    versions = [f"torch {torch.__version__}", f"python {platform.python_version()}"]
    for name in ("codec", *extra_packages):
        version = package_version(name)
        versions.append(f"{name} {version}" if version else f"{name} not installed")
    return [
        f"- Machine: {cpu_name()}, {os.cpu_count()} logical cores visible, GPU: {gpu}",
        f"- Versions: {', '.join(versions)}",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    ]


def git_revision() -> str:
    """Short hash of the checked-out commit, with ``+dirty`` when the tree has changes."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() + ("+dirty" if dirty else "") if done.returncode == 0 else "unknown"


# -- command line -------------------------------------------------------------------------------


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every benchmark script shares: where to write, conditions, a note."""
    parser.add_argument(
        "--write-results",
        nargs="?",
        const=str(RESULTS_PATH),
        default=None,
        metavar="PATH",
        help="also replace this script's section of RESULTS.md (default path when no PATH is given)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="LOAD",
        help="before measuring, wait (up to an hour) until the 1-minute load average is below LOAD",
    )
    parser.add_argument("--note", default="", help="a line about the conditions, added under the tables")


def command_line(script: str) -> str:
    """The command as a user would type it again, from the repository root."""
    return " ".join(["python", script, *sys.argv[1:]])


# -- tables and RESULTS.md ----------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if seconds < 0.1 else f"{seconds * 1e3:.1f}"


def write_section(title: str, body: str, path: Path = RESULTS_PATH) -> None:
    """Replace the ``## title`` section of ``path`` with ``body`` (appended when absent).

    A section runs from its ``## `` heading to the next ``## `` heading; nothing outside it
    changes, so several benchmarks share the file.
    """
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
