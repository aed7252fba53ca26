"""Streaming latency: per-frame encode and decode compute, real-time factor, algorithmic latency.

At batch 1 on 1 and 2 CPU threads this times our model through the public stream handle
(``codec.stream()``: one frame of audio in, its codes out, those codes decoded), frame after
frame, and in the same run the anchors under the same thread setting: Mimi in
``with mimi.streaming(1)`` and EnCodec 24 kHz on one-frame chunks (random weights, see
``benchmarks/streaming/anchors.py``).  When a GPU is present it also times one streaming step
captured as a CUDA graph, for N concurrent streams batched together, and reports how many
streams keep up with real time.

* compute latency: wall time of one call, median / p90 / p99 over the timed frames;
* RTF: median per-frame compute / frame duration (below 1 keeps up with real time);
* algorithmic latency: frame duration + the decoder's lookahead (the delay of the codec itself,
  with infinitely fast compute).

    python benchmarks/streaming/latency.py                    # print the tables
    python benchmarks/streaming/latency.py --write-results    # also update benchmarks/RESULTS.md
    python benchmarks/streaming/latency.py --quick --config debug --no-peers
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import anchors  # beside this script: the peer codecs' timing
import torch
from breakdown import breakdown_table, stage_breakdown, weights_line

from codec import Codec
from codec.bench import harness
from codec.streaming import StepOutput

SECTION = "Streaming latency"
# Targets of the default model on one CPU thread (issue 4).
TARGET_FRAME_COMPUTE_S = 1e-3
TARGET_RTF = 0.05
TARGET_FRAME_S = 0.020


def our_latency(codec: Codec, name: str, threads: int, frames: int, warmup: int) -> harness.FrameLatency:
    """Frame-by-frame ``stream.encode`` of one hop of audio, then ``stream.decode`` of its codes."""
    harness.set_threads(threads)
    stream = codec.stream(batch_size=1)
    hop, sr = codec.hop_length, codec.sample_rate
    gen = torch.Generator().manual_seed(0)
    chunks = 0.1 * torch.randn(warmup + frames, 1, 1, hop, generator=gen)
    enc, dec = harness.time_frames(lambda i: stream.encode(chunks[i]), stream.decode, frames, warmup)
    return harness.FrameLatency(name, threads, hop / sr, enc, dec, (hop + stream.lookahead) / sr)


def _cells(t: harness.Timing | None, fastest: bool = False) -> list[str]:
    """Median, p90, p99 (and the fastest call: the least disturbed one on a shared machine)."""
    if t is None:
        return ["-"] * (4 if fastest else 3)
    cells = [harness.fmt_ms(t.median), harness.fmt_ms(t.percentile(90)), harness.fmt_ms(t.percentile(99))]
    return [*cells, harness.fmt_ms(min(t.samples))] if fastest else cells


def latency_table(rows: list[harness.FrameLatency]) -> str:
    header = [
        "model",
        "threads",
        "frame ms",
        "encode ms median",
        "p90",
        "p99",
        "min",
        "decode ms median",
        "p90",
        "p99",
        "min",
        "encode RTF",
        "decode RTF",
        "algorithmic latency ms",
    ]
    body = []
    for r in rows:
        rtf = [f"{t.median / r.frame_seconds:.3f}" if t else "-" for t in (r.encode, r.decode)]
        frame = "-" if math.isnan(r.frame_seconds) else f"{r.frame_seconds * 1e3:.2f}"
        algo = "-" if math.isnan(r.algorithmic_seconds) else f"{r.algorithmic_seconds * 1e3:.1f}"
        body.append([r.model, r.threads, frame, *_cells(r.encode, True), *_cells(r.decode, True), *rtf, algo])
    return harness.markdown_table(header, body)


def targets_table(row: harness.FrameLatency, lookahead_s: float) -> str:
    """Pass/fail of the one-thread targets for our model's row."""

    def verdict(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    checks = []
    for what, t in (("encode", row.encode), ("decode", row.decode)):
        if t is None:
            continue
        checks.append(
            [
                f"{what} compute per {row.frame_seconds * 1e3:g} ms frame (median)",
                "<= 1 ms",
                f"{t.median * 1e3:.3f} ms",
                f"{min(t.samples) * 1e3:.3f} ms",
                verdict(t.median <= TARGET_FRAME_COMPUTE_S),
            ]
        )
        rtf = t.median / row.frame_seconds
        best = min(t.samples) / row.frame_seconds
        checks.append(
            [f"{what} RTF", f"<= {TARGET_RTF}", f"{rtf:.4f}", f"{best:.4f}", verdict(rtf <= TARGET_RTF)]
        )
    limit = TARGET_FRAME_S + lookahead_s
    checks.append(
        [
            "algorithmic latency",
            f"<= 20 ms + lookahead {lookahead_s * 1e3:g} ms = {limit * 1e3:g} ms",
            f"{row.algorithmic_seconds * 1e3:g} ms",
            "-",
            verdict(row.algorithmic_seconds <= limit + 1e-9),
        ]
    )
    return harness.markdown_table(
        ["target (one CPU thread, batch 1)", "limit", "measured (median)", "fastest frame", "result"], checks
    )


def _time_step(
    step: Callable[[torch.Tensor], StepOutput], n: int, hop: int, steps: int, warmup: int
) -> harness.Timing:
    wav = 0.1 * torch.randn(n, 1, hop, device="cuda")

    def call() -> None:
        step(wav)
        torch.cuda.synchronize()

    return harness.time_calls(call, steps, warmup)


def gpu_streams(
    codec: Codec, batches: list[int], steps: int, warmup: int
) -> tuple[list[list[str]], list[str]]:
    """Step times for N concurrent streams (CUDA graph replay; one eager row at N = 1 to compare).

    Stops after the first N whose p99 step misses the frame duration.  Returns rows and notes.
    """
    codec.to("cuda")
    frame_s, hop = codec.hop_length / codec.sample_rate, codec.hop_length
    t = _time_step(codec.stream(1).step, 1, hop, steps, warmup)
    rows = [["1 (eager, no graph)", *_cells(t), f"{t.median / frame_s:.4f}", "-"]]
    notes = []
    for n in batches:
        try:
            step, how = codec.stream(n).cuda_graph(), "graph"
        except torch.cuda.OutOfMemoryError:
            rows.append([str(n), "out of memory", "-", "-", "-", "-"])
            break
        except RuntimeError as err:  # capture refused (e.g. a host sync): time the eager step instead
            notes.append(f"N={n}: CUDA graph capture failed ({err}); the eager step was timed")
            step, how = codec.stream(n).step, "eager"
        t = _time_step(step, n, hop, steps, warmup)
        realtime = t.percentile(99) <= frame_s
        rows.append([f"{n} ({how})", *_cells(t), f"{t.median / frame_s:.4f}", "yes" if realtime else "no"])
        del step
        torch.cuda.empty_cache()
        if not realtime:
            break
    codec.to("cpu")
    return rows, notes


def gpu_section(codec: Codec, args: argparse.Namespace) -> list[str]:
    if args.no_gpu or not torch.cuda.is_available():
        why = (
            "--no-gpu was given"
            if args.no_gpu
            else "this machine has no GPU (torch.cuda.is_available() is False)"
        )
        return [
            f"GPU: not measured: {why}, so the CUDA-graph path of this script (one streaming step "
            "captured with torch.cuda.graph, `Stream.cuda_graph`; N concurrent streams "
            "as batch N) did not run. No GPU numbers are reported."
        ]
    rows, notes = gpu_streams(codec, args.gpu_batches, args.frames, args.warmup)
    table = harness.markdown_table(
        ["streams N (batch)", "step ms median", "p90", "p99", "RTF", "real time (p99 <= frame)"], rows
    )
    fits = [int(r[0].split()[0]) for r in rows if r[-1] == "yes"]
    return [
        f"GPU ({torch.cuda.get_device_name(0)}): one step = encode + decode of one frame for N streams "
        "batched together, wall time until synchronized:",
        "",
        table,
        "",
        *[f"- {n}" for n in notes],
        f"Largest N tried that runs in real time on this GPU: {max(fits) if fits else 'none'}.",
    ]


def run_cpu(codec: Codec, args: argparse.Namespace) -> list[harness.FrameLatency]:
    rows = []
    name = f"ours ({args.config}), {codec.total_codebooks} codebooks, {codec.bitrate() / 1000:g} kbps"
    for threads in args.threads:
        rows.append(our_latency(codec, name, threads, args.frames, args.warmup))
        if not args.no_peers:
            rows.append(anchors.mimi_latency(threads, args.peer_frames, args.peer_warmup))
            rows.append(anchors.encodec_latency(threads, args.peer_frames, args.peer_warmup))
    return rows


def report(
    args: argparse.Namespace,
    codec: Codec,
    rows: list[harness.FrameLatency],
    gpu: list[str],
    conditions: str,
    breakdown: str,
) -> str:
    command = harness.command_line("benchmarks/streaming/latency.py")
    ours = [r for r in rows if r.model.startswith("ours") and r.threads == 1]
    lines = [
        *harness.machine_lines(["moshi", "encodec"]),
        f"- Commit: {harness.git_revision()}; command: `{command}`",
        conditions,
        f"- Batch 1; ours: {args.frames} timed frames after {args.warmup} warm-up frames; peers: "
        f"{args.peer_frames} after {args.peer_warmup}. Random weights everywhere (speed does not depend "
        "on weight values). Times in ms of wall clock per frame; RTF = median / frame duration; "
        "min = the fastest frame (the least disturbed by other processes on a shared machine); "
        "pass/fail uses the median.",
        "",
        latency_table(rows),
        "",
    ]
    notes = sorted({f"{r.model.split(',')[0]}: {r.note}" for r in rows if r.note})
    lines += [f"- {n}" for n in notes]
    lines += [
        f"- Algorithmic latency: ours = frame {codec.hop_length / codec.sample_rate * 1e3:g} ms + decoder "
        f"lookahead {codec.lookahead / codec.sample_rate * 1e3:g} ms (the iSTFT overlap); Mimi = its "
        "80 ms frame; EnCodec 24 kHz (causal) = its 13.3 ms frame.",
        "",
    ]
    if ours:
        which = "" if args.config == "speech_16k" else " (set for speech_16k; shown for this config)"
        lines += [f"Targets{which}:", "", targets_table(ours[0], codec.lookahead / codec.sample_rate), ""]
    if breakdown:
        lines += [
            f"Where the time of one frame goes (ours, batch 1, {args.threads[0]} thread(s), median over "
            f"{args.frames} frames; `benchmarks/streaming/breakdown.py`):",
            "",
            breakdown,
            "",
            weights_line(codec),
            "",
        ]
    lines += gpu
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="speech_16k", help="preset name or YAML path")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--frames", type=int, default=1000, help="timed frames of our model (and GPU steps)")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--peer-frames", type=int, default=100, help="timed frames of each peer")
    p.add_argument("--peer-warmup", type=int, default=5)
    p.add_argument("--no-peers", action="store_true", help="skip Mimi and EnCodec")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-stage table of our model")
    p.add_argument("--no-gpu", action="store_true", help="skip the GPU section even if CUDA is available")
    p.add_argument("--gpu-batches", type=int, nargs="+", default=[1, 8, 64, 256, 1024, 4096, 16384])
    p.add_argument("--quick", action="store_true", help="smoke run: a few frames per model")
    harness.add_common_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.frames, args.warmup, args.peer_frames, args.peer_warmup = 20, 3, 3, 1
        args.gpu_batches = args.gpu_batches[:2]
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    torch.manual_seed(0)
    codec = Codec.from_config(args.config)
    conditions = harness.Conditions(harness.wait_for_quiet(args.wait_quiet))
    start = time.perf_counter()
    rows = run_cpu(codec, args)
    breakdown = ""
    if not args.no_breakdown:
        breakdown = breakdown_table(stage_breakdown(codec, args.threads[0], args.frames, args.warmup))
    cpu_conditions = conditions.line()
    gpu = gpu_section(codec, args)
    text = report(args, codec, rows, gpu, cpu_conditions, breakdown)
    print(f"## {SECTION}\n\n{text}\n\n(ran {time.perf_counter() - start:.0f} s)")
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return text


if __name__ == "__main__":
    main()
