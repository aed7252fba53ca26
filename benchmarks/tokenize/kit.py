"""Helpers of ``bench.py``: child processes with their own peak RSS, and padding from a plan."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from codec.api import Codec
from codec.audio import resampled_length
from codec.streaming import EXACT_FRAMES
from codec.tokenize.plan import batches


@dataclass
class ChildRun:
    """One command: wall seconds, its own peak RSS in bytes, exit status, output."""

    seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str


def cli_command() -> list[str]:
    """The ``codec`` console script of this interpreter's environment, or the module entry point."""
    script = Path(sys.executable).with_name("codec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "codec.cli"]


def run(argv: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run a command to completion; its own peak RSS comes from ``os.wait4`` (Linux: KiB).

    Output goes to temporary files, not pipes, so nothing reaps the child before ``wait4``.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(seconds, usage.ru_maxrss * 1024, proc.returncode, out.read(), err.read())


def _frames(n: int, hop: int) -> int:
    return -(-n // hop)


def padding(groups: list[list[int]], lengths: list[int], hop: int) -> tuple[int, int]:
    """(frames run, frames valid) of batches ``groups`` over model-rate ``lengths``."""
    run_frames = sum(len(g) * max(_frames(max(lengths[i] for i in g), hop), EXACT_FRAMES) for g in groups)
    return run_frames, sum(_frames(n, hop) for n in lengths)


def padding_rows(plan_path: Path, args: argparse.Namespace) -> list[list[str]]:
    """Padding overhead of bucketed batches (per shard, shortest first) and of input-order batches."""
    codec = Codec.from_pretrained(args.model)
    table = pq.read_table(plan_path, columns=["id", "sample_rate", "num_samples", "shard"]).to_pylist()
    rate, hop = codec.sample_rate, codec.hop_length
    ok = [r for r in table if r["shard"] >= 0]
    length = {r["id"]: int(resampled_length(r["num_samples"], r["sample_rate"], rate)) for r in ok}
    rows = []
    for seconds in args.batch_seconds:
        budget = round(seconds * rate)
        bucketed = [0, 0]
        for shard in sorted({r["shard"] for r in ok}):
            lengths = [length[r["id"]] for r in ok if r["shard"] == shard]  # the plan's order: shortest first
            run_f, valid = padding(batches(lengths, budget), lengths, hop)
            bucketed = [bucketed[0] + run_f, bucketed[1] + valid]
        plain = [length[i] for i in sorted(length)]  # input order (sorted ids), no bucketing
        run_f, valid = padding(batches(plain, budget, float("inf")), plain, hop)
        rows.append(
            ["length-bucketed (codec tokenize)", f"{seconds:g}", f"{bucketed[0] / bucketed[1] - 1:.2%}"]
        )
        rows.append(["input order, filled to the budget", f"{seconds:g}", f"{run_f / valid - 1:.2%}"])
    return rows
