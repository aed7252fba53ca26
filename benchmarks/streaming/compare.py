"""Per-frame streaming cost of two presets, side by side in one run (the next default model
against today's).

On one CPU thread each preset's model (random weights: the cost does not depend on them) streams
frame by frame (``stream.encode`` of one hop, then ``stream.decode`` of its codes, as
``latency.py`` times it).  The presets take turns for ``--rounds`` rounds of ``--frames`` frames,
so both see the same machine load; the result is the median over rounds of each round's median
per-frame time and the ratio of the two, which is what a noisy shared machine can measure.

    python benchmarks/streaming/compare.py                       # speech_16k_v2 against speech_16k
    python benchmarks/streaming/compare.py --write-results
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from latency import our_latency

from codec import Codec, CodecConfig
from codec.bench import harness

SECTION = "Streaming cost: next default model against today's"
# The next default model may cost at most this much more per frame than today's.
MAX_RATIO = 1.15


def measure(configs: list[str], rounds: int, frames: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Per preset and stage (encode, decode, both): each round's median seconds per frame."""
    torch.manual_seed(0)
    codecs = {name: Codec.from_config(CodecConfig.from_yaml(name)) for name in configs}
    out = {name: {"encode": [], "decode": [], "both": [], "fastest": []} for name in configs}
    for _ in range(rounds):
        for name, codec in codecs.items():
            row = our_latency(codec, name, 1, frames, warmup)
            both = [e + d for e, d in zip(row.encode.samples, row.decode.samples, strict=True)]
            out[name]["encode"].append(row.encode.median)
            out[name]["decode"].append(row.decode.median)
            out[name]["both"].append(row.encode.median + row.decode.median)
            out[name]["fastest"].append(min(both))
    return out


def table(results: dict[str, dict[str, list[float]]], base: str) -> tuple[str, float]:
    """The Markdown table and the ratio of the encode + decode cost to ``base``'s."""
    med = {n: {k: statistics.median(v) for k, v in stages.items()} for n, stages in results.items()}
    med = {n: {**stages, "fastest": min(results[n]["fastest"])} for n, stages in med.items()}
    rows = []
    for name, stages in med.items():
        cells = [harness.fmt_ms(stages[k]) for k in ("encode", "decode", "both")]
        ratios = [f"{stages[k] / med[base][k]:.3f}" for k in ("both", "fastest")]
        rows.append([name, *cells, ratios[0], harness.fmt_ms(stages["fastest"]), ratios[1]])
    header = ["preset", "encode ms / frame", "decode ms / frame", "encode + decode", "ratio"]
    header += ["fastest frame ms", "ratio"]
    worst = max(s["both"] / med[base]["both"] for n, s in med.items() if n != base)
    return harness.markdown_table(header, rows), worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=["speech_16k", "speech_16k_v2"])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--warmup", type=int, default=30)
    harness.add_common_args(p)
    args = p.parse_args(argv)
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    results = measure(args.configs, args.rounds, args.frames, args.warmup)
    body, worst = table(results, args.configs[0])
    verdict = "pass" if worst <= MAX_RATIO else "FAIL"
    lines = [
        f"- Command: `{harness.command_line('benchmarks/streaming/compare.py')}`",
        *harness.machine_lines(),
        conditions.line(),
        f"- One thread, batch 1, random weights; {args.rounds} alternating rounds of {args.frames} "
        f"frames (after {args.warmup} untimed), median over rounds of each round's median",
        "",
        body,
        "",
        f"Target: at most {MAX_RATIO:.2f}x the encode + decode cost of `{args.configs[0]}` per frame: "
        f"{worst:.3f}x, {verdict}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        harness.write_section(
            SECTION, text + (f"\n\n{args.note}" if args.note else ""), Path(args.write_results)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
