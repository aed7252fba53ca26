"""A distilled student against its teacher: per-frame streaming compute, measured in one run.

Both models are timed in the same process, on the same thread setting, in alternating rounds
(teacher, student, teacher, student, ...), so that a change in the machine's load during the
run reaches both alike; each model's figure pools the frames of all its rounds.  Timing is
``benchmarks/streaming/latency.py``'s (one frame of audio into ``stream.encode``, its codes into
``stream.decode``), and the stage breakdown is ``breakdown.py``'s.  Random weights: speed does
not depend on the weight values.

    python benchmarks/streaming/student.py --teacher speech_16k --student speech_16k_small
    python benchmarks/streaming/student.py --write-results    # also update benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from breakdown import stage_breakdown
from latency import TARGET_FRAME_COMPUTE_S, our_latency

from codec import Codec
from codec.bench import harness

SECTION = "Distilled student latency"


def measure(
    codecs: dict[str, Codec], threads: int, frames: int, warmup: int, rounds: int
) -> dict[str, tuple[harness.Timing, harness.Timing]]:
    """Encode and decode timings per model, pooled over ``rounds`` alternating rounds."""
    pooled: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in codecs}
    for _ in range(rounds):
        for name, codec in codecs.items():
            row = our_latency(codec, name, threads, frames, warmup)
            pooled[name][0].extend(row.encode.samples)
            pooled[name][1].extend(row.decode.samples)
    return {name: (harness.Timing(tuple(e)), harness.Timing(tuple(d))) for name, (e, d) in pooled.items()}


def latency_table(timings: dict[str, tuple[harness.Timing, harness.Timing]], codecs: dict[str, Codec]) -> str:
    body = []
    for name, (enc, dec) in timings.items():
        verdict = "pass" if max(enc.median, dec.median) <= TARGET_FRAME_COMPUTE_S else "FAIL"
        params = sum(p.numel() for p in codecs[name].model.parameters())
        cells = [harness.fmt_ms(x) for x in (enc.median, enc.percentile(90), min(enc.samples))]
        cells += [harness.fmt_ms(x) for x in (dec.median, dec.percentile(90), min(dec.samples))]
        body.append([name, f"{params / 1e6:.2f} M", *cells, verdict])
    header = ["model", "parameters", "encode ms median", "p90", "min", "decode ms median", "p90", "min"]
    return harness.markdown_table([*header, "<= 1 ms each (median)"], body)


def breakdown_table(stages: dict[str, list[tuple[str, float]]]) -> str:
    names = list(stages)
    rows = [[stage, *[f"{dict(stages[n])[stage] * 1e3:.3f}" for n in names]] for stage, _ in stages[names[0]]]
    return harness.markdown_table(["stage (one frame, batch 1), ms median", *names], rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="speech_16k", help="teacher preset name or YAML path")
    p.add_argument("--student", default="speech_16k_small", help="student preset name or YAML path")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frames", type=int, default=500, help="timed frames per model and round")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds per model")
    p.add_argument("--quick", action="store_true", help="smoke run: a few frames")
    harness.add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.frames, args.warmup, args.rounds = 20, 3, 2
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    torch.manual_seed(0)
    codecs = {f"teacher ({args.teacher})": Codec.from_config(args.teacher)}
    codecs[f"student ({args.student})"] = Codec.from_config(args.student)
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    start = time.perf_counter()
    timings = measure(codecs, args.threads, args.frames, args.warmup, args.rounds)
    stages = {name: stage_breakdown(c, args.threads, args.frames, args.warmup) for name, c in codecs.items()}
    command = harness.command_line("benchmarks/streaming/student.py")
    lines = [
        *harness.machine_lines(),
        f"- Commit: {harness.git_revision()}; command: `{command}`",
        conditions.line(),
        f"- Batch 1, {args.threads} thread(s); per model {args.rounds} alternating rounds of {args.frames} "
        f"timed frames after {args.warmup} warm-up frames (pooled); random weights. Times in ms of wall "
        "clock per 20 ms frame; min = the fastest frame.",
        "",
        latency_table(timings, codecs),
        "",
        "Where the time of one frame goes (`benchmarks/streaming/breakdown.py`'s stages, same process):",
        "",
        breakdown_table(stages),
    ]
    if args.note:
        lines += ["", args.note]
    text = "\n".join(lines)
    print(f"## {SECTION}\n\n{text}\n\n(ran {time.perf_counter() - start:.0f} s)")
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return text


if __name__ == "__main__":
    main()
