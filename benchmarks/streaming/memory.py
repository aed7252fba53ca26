"""Long-file memory: peak resident memory of ``codec encode`` / ``codec decode`` on long inputs.

For each length (default 10, 30 and 60 minutes) this writes a generated 16 kHz mono WAV, runs
``codec encode IN.wav -o OUT.cdc --model DIR`` and then ``codec decode OUT.cdc -o OUT.wav
--model DIR`` as fresh child processes, and reads each child's peak RSS from the kernel
(``os.wait4`` returns the child's own ``ru_maxrss``, so sizes never mix).  The model directory
holds a random-weight model of the preset (memory does not depend on weight values).

A file-based tool that loaded the whole input would grow with its length (60 minutes of
float32 audio at 16 kHz is 230 MB before any activations); the CLI goes through the
streaming path in bounded chunks, so its peak should stay flat.  Target: < 1.5 GB at 1 hour.

    python benchmarks/streaming/memory.py                     # print the table
    python benchmarks/streaming/memory.py --write-results     # also update benchmarks/RESULTS.md
    python benchmarks/streaming/memory.py --quick --config debug
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codec import Codec
from codec.bench import harness
from codec.checkpoint import save_model

SECTION = "Long-file memory"
TARGET_BYTES = 1.5e9
SAMPLE_RATE = 16000


@dataclass
class ChildRun:
    """One CLI run: its peak RSS in bytes, wall time in seconds and exit status."""

    peak_rss: int
    seconds: float
    returncode: int
    stderr: str


# (minutes, samples, encode run, decode run or None when not run)
Row = tuple[float, int, ChildRun, "ChildRun | None"]


def write_test_wav(path: Path, minutes: float, block_seconds: float = 10.0) -> int:
    """Write ``minutes`` of a speech-band test signal as 16-bit PCM, block by block (bounded memory).

    Returns the number of samples written.
    """
    total = round(minutes * 60 * SAMPLE_RATE)
    block = round(block_seconds * SAMPLE_RATE)
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, "PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / SAMPLE_RATE
            # A gliding harmonic tone plus noise: not silence, so no codec path is skipped.
            tone = 0.2 * np.sin(2 * np.pi * (150 + 50 * np.sin(2 * np.pi * 0.3 * t)) * t)
            f.write((tone + 0.05 * rng.standard_normal(n)).astype(np.float32))
    return total


def cli_command() -> list[str]:
    """The ``codec`` console script of this interpreter's environment, or the module entry point."""
    script = Path(sys.executable).with_name("codec")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from codec.cli import main; sys.exit(main())"]


def run_child(args: list[str], env: dict[str, str]) -> ChildRun:
    """Run one command to completion and return its own peak RSS (Linux ``ru_maxrss`` is in KiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None  # Popen was given stderr=PIPE
    # Read stderr to the end first so a chatty child never blocks on a full pipe.
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(usage.ru_maxrss * 1024, time.perf_counter() - start, proc.returncode, err[-2000:])


def measure_length(workdir: Path, model_dir: Path, minutes: float, decode: bool, env: dict[str, str]) -> Row:
    """Encode (and decode) one generated file; returns ``(minutes, samples, encode run, decode run)``."""
    wav, tokens, out = (
        workdir / f"in_{minutes:g}min.wav",
        workdir / f"{minutes:g}min.cdc",
        workdir / "out.wav",
    )
    samples = write_test_wav(wav, minutes)
    cli = cli_command()
    enc = run_child([*cli, "encode", str(wav), "-o", str(tokens), "--model", str(model_dir)], env)
    dec = None
    if decode and enc.returncode == 0:
        dec = run_child([*cli, "decode", str(tokens), "-o", str(out), "--model", str(model_dir)], env)
    for path in (wav, tokens, out):
        path.unlink(missing_ok=True)
    return minutes, samples, enc, dec


def _label(minutes: float) -> str:
    return f"{minutes * 60:g} s" if minutes < 1 else f"{minutes:g} min"


def _cells(run: ChildRun | None, audio_seconds: float) -> list[str]:
    if run is None:
        return ["-", "-", "-"]
    if run.returncode != 0:
        return [f"failed (exit {run.returncode})", "-", "-"]
    return [f"{run.peak_rss / 2**20:.0f}", f"{run.seconds:.1f}", f"{run.seconds / audio_seconds:.4f}"]


def results_table(rows: list[Row]) -> str:
    header = [
        "input",
        "samples",
        "encode peak RSS MiB",
        "encode wall s",
        "encode RTF",
        "decode peak RSS MiB",
        "decode wall s",
        "decode RTF",
    ]
    body = [
        [_label(m), f"{n:,}", *_cells(enc, n / SAMPLE_RATE), *_cells(dec, n / SAMPLE_RATE)]
        for m, n, enc, dec in rows
    ]
    return harness.markdown_table(header, body)


def target_line(rows: list[Row]) -> str:
    hour = [r for r in rows if math.isclose(r[0], 60.0)]
    if not hour:
        return "Target (< 1.5 GB peak RSS for a 1-hour file): not evaluated (no 60-minute run)."
    runs = [r for r in hour[0][2:] if r is not None and r.returncode == 0]
    if not runs:
        return "Target (< 1.5 GB peak RSS for a 1-hour file): not evaluated (the runs failed)."
    peak = max(r.peak_rss for r in runs)
    verdict = "pass" if peak < TARGET_BYTES else "FAIL"
    return f"Target: 1-hour file peak RSS < 1.5 GB: {peak / 1e9:.2f} GB ({verdict})."


def failures(rows: list[Row]) -> list[str]:
    out = []
    for minutes, _, *runs in rows:
        for what, run in zip(("encode", "decode"), runs, strict=True):
            if run is not None and run.returncode != 0:
                tail = run.stderr.strip().splitlines()[-1:] or ["(no message)"]
                out.append(f"- {_label(minutes)} {what} failed: {tail[0]}")
    return out


def import_baseline(env: dict[str, str]) -> ChildRun:
    """Peak RSS of a child that only imports the CLI (torch included): the floor of every run."""
    return run_child([sys.executable, "-c", "import codec.cli"], env)


def report(args: argparse.Namespace, rows: list[Row], conditions: str, env_note: str, floor: ChildRun) -> str:
    command = harness.command_line("benchmarks/streaming/memory.py")
    lines = [
        f"Model `{args.config}` (random weights) saved with `codec.checkpoint.save_model`; input: "
        "generated 16 kHz mono 16-bit WAV (tone + noise); each run is a fresh child process "
        "(`codec encode IN.wav -o OUT.cdc --model DIR`, then `codec decode OUT.cdc -o OUT.wav --model DIR`); "
        "peak RSS = the child's own `ru_maxrss` from `os.wait4`.",
        "",
        *harness.machine_lines(),
        f"- Commit: {harness.git_revision()}; command: `{command}`; {env_note}",
        conditions,
        "",
        results_table(rows),
        "",
        f"Floor: a child that only runs `import codec.cli` (torch included) peaks at "
        f"{floor.peak_rss / 2**20:.0f} MiB.",
        "",
        target_line(rows),
        *failures(rows),
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="speech_16k", help="preset name or YAML path")
    p.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    p.add_argument("--no-decode", action="store_true", help="measure encode only")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for the children (default: the CLI's own default)",
    )
    p.add_argument("--workdir", default=None, help="where the WAV/token files go (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="smoke run: one 3 s input")
    harness.add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.minutes = [0.05]
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    env = dict(os.environ)
    env_note = "children run with the CLI's default thread count"
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
        env_note = f"children run with OMP_NUM_THREADS={args.threads}"
    workdir = Path(tempfile.mkdtemp(prefix="codec-memory-", dir=args.workdir))
    try:
        torch.manual_seed(0)
        model_dir = save_model(Codec.from_config(args.config).model, workdir / "model")
        conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
        floor = import_baseline(env)
        rows = [measure_length(workdir, model_dir, m, not args.no_decode, env) for m in args.minutes]
        text = report(args, rows, conditions.line(), env_note, floor)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"## {SECTION}\n\n{text}")
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return text


if __name__ == "__main__":
    main()
