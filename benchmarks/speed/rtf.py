"""Offline encode/decode real-time factors on the CPU, and the parameter counts.

Times ``Codec.encode`` and ``Codec.decode`` (the public offline API, padding and trimming
included) on random-weight models of a preset: the speed of a model does not depend on its
weight values, so the numbers hold for the trained model of the same architecture.

RTF = compute seconds / seconds of audio processed (all batch items together): below 1 is
faster than real time; ``1 / RTF`` is the speed-up over real time.  Each cell is the median of
``--repeats`` timed calls after ``--warmup`` untimed ones.

    python benchmarks/speed/rtf.py                       # print the table
    python benchmarks/speed/rtf.py --write-results       # also update benchmarks/RESULTS.md
    python benchmarks/speed/rtf.py --quick --config debug
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from codec import Codec
from codec.bench import harness

SECTION = "Offline speed (CPU)"


@dataclass
class RtfRow:
    threads: int
    seconds: float
    batch: int
    encode: harness.Timing
    decode: harness.Timing

    @property
    def audio_seconds(self) -> float:
        return self.seconds * self.batch


def parameter_counts(codec: Codec) -> dict[str, int]:
    """Trainable parameters per stage (codebook usage counters and windows are buffers, not counted)."""
    model = codec.model
    counts = {
        name: sum(p.numel() for p in getattr(model, name).parameters())
        for name in ("encoder", "quantizer", "decoder")
    }
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def measure(codec: Codec, threads: int, seconds: float, batch: int, repeats: int, warmup: int) -> RtfRow:
    """Time offline encode and decode of a ``[batch, 1, seconds * sr]`` noise input."""
    harness.set_threads(threads)
    gen = torch.Generator().manual_seed(0)
    wav = 0.1 * torch.randn(batch, 1, round(seconds * codec.sample_rate), generator=gen)
    codes = codec.encode(wav, codec.sample_rate)
    enc = harness.time_calls(lambda: codec.encode(wav, codec.sample_rate), repeats, warmup)
    dec = harness.time_calls(lambda: codec.decode(codes), repeats, warmup)
    return RtfRow(threads, seconds, batch, enc, dec)


def results_table(rows: list[RtfRow]) -> str:
    header = [
        "threads",
        "input",
        "batch",
        "encode ms (median)",
        "encode RTF",
        "decode ms (median)",
        "decode RTF",
        "encode x real time",
        "decode x real time",
    ]
    body = []
    for r in rows:
        enc_rtf, dec_rtf = r.encode.median / r.audio_seconds, r.decode.median / r.audio_seconds
        body.append(
            [
                r.threads,
                f"{r.seconds:g} s",
                r.batch,
                harness.fmt_ms(r.encode.median),
                f"{enc_rtf:.4f}",
                harness.fmt_ms(r.decode.median),
                f"{dec_rtf:.4f}",
                f"{1 / enc_rtf:.0f}",
                f"{1 / dec_rtf:.0f}",
            ]
        )
    return harness.markdown_table(header, body)


def params_table(counts: dict[str, int]) -> str:
    rows = [[name, f"{n:,}", f"{n / 1e6:.2f} M"] for name, n in counts.items()]
    return harness.markdown_table(["stage", "parameters", "millions"], rows)


def report(args: argparse.Namespace, codec: Codec, rows: list[RtfRow], conditions: str) -> str:
    command = harness.command_line("benchmarks/speed/rtf.py")
    lines = [
        f"Model `{args.config}` (random weights: speed does not depend on weight values): "
        f"{codec.sample_rate} Hz, hop {codec.hop_length} ({codec.frame_rate:g} Hz frames), "
        f"{codec.total_codebooks} codebooks x {codec.codebook_size}.",
        "",
        *harness.machine_lines(),
        f"- Commit: {harness.git_revision()}; command: `{command}`",
        conditions,
        f"- Median of {args.repeats} timed calls after {args.warmup} warm-up call(s); noise input; "
        "RTF = compute time / audio duration summed over the batch (lower is faster).",
        "",
        results_table(rows),
        "",
        "Parameters:",
        "",
        params_table(parameter_counts(codec)),
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="speech_16k", help="preset name or YAML path")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s input, batch 1 and 2, 2 repeats")
    harness.add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.batch, args.repeats, args.warmup = [1.0], [1, 2], 2, 1
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    torch.manual_seed(0)
    codec = Codec.from_config(args.config)
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    rows = [
        measure(codec, t, s, b, args.repeats, args.warmup)
        for t in args.threads
        for s in args.seconds
        for b in args.batch
    ]
    text = report(args, codec, rows, conditions.line())
    print(f"## {SECTION}\n\n{text}")
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return text


if __name__ == "__main__":
    main()
