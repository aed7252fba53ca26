"""Start-up time of the ``codec`` command line: wall time of short commands, and where it goes.

Each command runs as a fresh child process (``python -m codec.cli ...``, cwd = the checkout
under test, so that checkout's ``codec`` is the one imported); the table gives the median and
the fastest of ``--repeats`` runs.  The import breakdown comes from ``python -X importtime``:
all imports together, and the cumulative import time of each heavy package the command loads.

``--before REV`` measures another revision in the same run, side by side: its tree is
extracted with ``git archive`` into a temporary folder (no worktree, no change to the
repository) and run with the same interpreter.

    python benchmarks/startup/startup.py --before 56b1ed4 --write-results
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.bench import harness

SECTION = "CLI start-up time"
REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchaudio", "numpy", "soundfile", "lightning", "matplotlib", "scipy", "transformers")


def commands(work: Path) -> dict[str, list[str]]:
    """The measured commands (arguments after ``codec``), by label."""
    return {
        "codec --help": ["--help"],
        "codec encode --bad-option (usage error)": ["encode", "--bad-option"],
        "codec info speech_16k": ["info", "speech_16k"],
        "codec encode 1 s WAV -o x.cdc": [
            "encode",
            str(work / "one.wav"),
            "-o",
            str(work / "x.cdc"),
            "--force",
        ],
    }


def run_once(checkout: Path, argv: list[str], extra: tuple[str, ...] = ()) -> tuple[float, str]:
    """One child run; returns (wall seconds, stderr)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *extra, "-m", "codec.cli", *argv], cwd=checkout, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(argv)} failed in {checkout}: {done.stderr.strip()[-500:]}")
    return wall, done.stderr


def import_breakdown(stderr: str) -> dict[str, float]:
    """Seconds of imports from ``-X importtime`` output: ``"all"`` (every top-level import) and,
    for each heavy package loaded, its own cumulative import time wherever it was first imported."""
    totals: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if not match:
            continue
        seconds, depth, name = int(match.group(1)) / 1e6, len(match.group(2)), match.group(3)
        if depth == 1:
            totals["all"] += seconds
        if name in HEAVY:
            totals[name] = max(totals[name], seconds)
    return dict(totals)


def measure(checkout: Path, work: Path, repeats: int) -> dict[str, tuple[list[float], dict[str, float]]]:
    """Wall times and one import breakdown per command."""
    out = {}
    for label, argv in commands(work).items():
        run_once(checkout, argv)  # untimed warm-up: bytecode caches, the page cache
        walls = [run_once(checkout, argv)[0] for _ in range(repeats)]
        _, stderr = run_once(checkout, argv, ("-X", "importtime"))
        out[label] = (walls, import_breakdown(stderr))
    return out


def heavy_line(breakdown: dict[str, float]) -> str:
    shown = [f"{name} {breakdown[name] * 1e3:.0f}" for name in HEAVY if breakdown.get(name, 0) > 0.0005]
    return f"{breakdown.get('all', 0.0) * 1e3:.0f} ms ({', '.join(shown) or 'no heavy package'})"


def table(runs: dict[str, dict]) -> str:
    header = ["command"]
    for name in runs:
        header += [f"{name}: median s", f"{name}: fastest s", f"{name}: imports ms (heavy packages)"]
    rows = []
    for label in next(iter(runs.values())):
        row = [f"`{label}`"]
        for result in runs.values():
            walls, breakdown = result[label]
            row += [f"{statistics.median(walls):.2f}", f"{min(walls):.2f}", heavy_line(breakdown)]
        rows.append(row)
    return harness.markdown_table(header, rows)


def extract(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (``git archive``) in ``into``; the repository itself is not touched."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    # The installed (editable) codec must not shadow the extracted one: the cwd comes first.
    where = subprocess.run(
        [sys.executable, "-c", "import codec; print(codec.__file__)"],
        cwd=into,
        capture_output=True,
        text=True,
    )
    if not where.stdout.strip().startswith(str(into)):
        raise SystemExit(f"{rev}: its codec is not the one imported ({where.stdout.strip() or where.stderr})")
    return into


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", metavar="REV", help="also measure this git revision, side by side")
    p.add_argument("--repeats", type=int, default=5, help="runs per command (median and fastest)")
    p.add_argument("--quick", action="store_true", help="smoke run: one repeat")
    harness.add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 1
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="codec-startup-"))
    try:
        t = np.arange(16000) / 16000
        sf.write(work / "one.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 16000, subtype="PCM_16")
        conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
        runs = {}
        if args.before:
            before = extract(args.before, work / "before")
            runs[f"before ({args.before})"] = measure(before, work, args.repeats)
        runs[f"now ({harness.git_revision()})"] = measure(REPO, work, args.repeats)
        floor = [run_once(work, [], ("-c", "import torch"))[0] for _ in range(args.repeats)]
        text = "\n".join([
            "Wall time of a fresh `python -m codec.cli ...` child per run (the `codec` script does the "
            f"same), {args.repeats} runs per command; imports from `python -X importtime` (all imports, "
            "and each heavy package's own cumulative time).  The encode row uses the bundled model "
            "and 1 s of 16 kHz audio.",
            "",
            *harness.machine_lines(),
            f"- Command: `{harness.command_line('benchmarks/startup/startup.py')}`",
            conditions.line(),
            "",
            table(runs),
            "",
            f"Floor: `python -c 'import torch'` alone takes {statistics.median(floor):.2f} s (median).",
        ])  # fmt: skip
        if args.note:
            text += f"\n\n{args.note}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"## {SECTION}\n\n{text}")
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return text


if __name__ == "__main__":
    main()
