"""Short CPU runs of the speech-LM presets: train, export, reload, token rate, streaming latency.

Usage (from the repository root, as a module so that ``benchmarks`` imports)::

    nice -n 10 python -m benchmarks.training.presets --out runs/presets --steps 300 --write-results
    python -m benchmarks.training.presets --out runs/presets --report-only --write-results

For each preset (``--presets``, default ``low_frame_rate_16k single_codebook_16k``) this
trains the preset's model with its recipe cut to ``--steps`` steps (batch ``--batch-size``,
``--segment-seconds`` crops, a short warmup, spectral losses only), through the command line a
user types (``codec train`` then ``codec export``) on one CPU thread; reloads the exported
directory with :meth:`codec.Codec.from_pretrained`; measures the token rate on dev audio,
checks that streaming in odd chunks gives the offline codes and samples, times one-thread
streaming per frame (``benchmarks/streaming/latency.py``'s method) and scores a dev subset.
It only shows that a preset trains and round-trips: a few hundred CPU steps are far from a
usable model.  Each preset writes ``OUT/NAME/result.json``; the table (``--write-results``:
the "Speech-LM presets" section of ``benchmarks/RESULTS.md``) is built from those files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.training.ablate import build_preset, dev_subset, evaluate
from codec import Codec
from codec.bench import harness
from codec.metrics import entropy_bits

SECTION = "Speech-LM presets (short CPU runs)"
PRESETS = ["low_frame_rate_16k", "single_codebook_16k"]
_MODULE = "-m benchmarks.training.presets"


def short_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The preset's recipe cut to a short CPU run (same for every preset)."""
    return {
        "train.max_steps": args.steps,
        "train.data.train": [str(p) for p in args.data],
        "train.data.val": [str(args.dev)],
        "train.data.batch_size": args.batch_size,
        "train.data.segment_seconds": args.segment_seconds,
        "train.data.num_workers": 1,
        "train.data.val_items": 4,
        "train.data.val_seconds": 4.0,
        "train.optimizer.warmup_steps": max(args.steps // 10, 1),
        "train.discriminator.start_step": None,
        "train.checkpoint.every_n_steps": args.steps,
        "train.checkpoint.keep_last": 1,
        "train.logging.every_n_steps": 10,
        "train.logging.val_every_n_steps": args.steps,
        "train.logging.metric_items": 2,
        "train.logging.audio_items": 1,
    }


def _codec_cli(*argv: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "codec", *argv]
    subprocess.run(cmd, check=True, env=env)


def scalars(run_dir: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


@torch.no_grad()
def stream_parity(codec: Codec, wav: torch.Tensor) -> tuple[bool, float]:
    """Streamed codes (odd chunks) == offline codes; max |streamed - offline| decoded samples."""
    offline = codec.encode(wav[None, None], codec.sample_rate)
    stream, parts, pos = codec.stream(), [], 0
    for n in [1, 333, 4000, 17] * (wav.shape[0] // 4351 + 1):
        parts.append(stream.encode(wav[None, None, pos : pos + n]))
        pos += n
    parts.append(stream.flush().codes)
    same = torch.equal(torch.cat(parts, -1), offline.codes)
    dec = codec.stream()
    audio = [dec.decode(offline.codes[..., i : i + 3]) for i in range(0, offline.num_frames, 3)]
    audio.append(dec.flush().wav)
    ref = codec.decode(offline)
    streamed = torch.cat(audio, -1)[..., dec.lookahead :][..., : ref.shape[-1]]
    return same, float((streamed - ref).abs().max())


def frame_latency(codec: Codec, frames: int, warmup: int) -> tuple[float, float]:
    """Median encode and decode ms per frame, one thread, batch 1 (as the latency benchmark)."""
    harness.set_threads(1)
    stream = codec.stream()
    chunks = 0.1 * torch.randn(
        warmup + frames, 1, 1, codec.hop_length, generator=torch.Generator().manual_seed(0)
    )
    enc, dec = harness.time_frames(lambda i: stream.encode(chunks[i]), stream.decode, frames, warmup)
    return enc.median * 1e3, dec.median * 1e3


@torch.no_grad()
def codebook_usage(codec: Codec, clips: list[torch.Tensor]) -> tuple[float, float]:
    """Over ``clips``: mean fraction of each codebook's entries used, and mean usage perplexity."""
    codes = torch.cat([codec.encode(c[None, None], codec.sample_rate).codes[0] for c in clips], dim=-1)
    used, perplexity = [], []
    for level in codes:
        counts = torch.bincount(level, minlength=codec.codebook_size)
        used.append(float((counts > 0).double().mean()))
        perplexity.append(2 ** entropy_bits(counts))
    return statistics.fmean(used), statistics.fmean(perplexity)


def remeasure(result: dict[str, Any], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Latency (beside speech_16k's, timed in the same run) and codebook usage on more dev audio."""
    codec = Codec.from_pretrained(out / "model")
    usage_clips = dev_subset(args.dev, args.usage_files, 4.0, codec.sample_rate)
    used, perplexity = codebook_usage(codec, usage_clips)
    torch.manual_seed(0)
    reference = frame_latency(Codec.from_config("speech_16k"), args.frames, 20)
    enc_ms, dec_ms = frame_latency(codec, args.frames, 20)
    return {
        **result,
        "encode_ms": enc_ms,
        "decode_ms": dec_ms,
        "speech_16k_ms": reference,
        "codes_used": used,
        "dev_perplexity": perplexity,
        "usage_seconds": sum(c.shape[0] for c in usage_clips) / codec.sample_rate,
        "load": harness.load_average(),
    }


def run_preset(name: str, args: argparse.Namespace, clips: list[torch.Tensor]) -> dict[str, Any]:
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    preset = build_preset(name, short_overrides(args))
    config = out / "preset.yaml"
    config.write_text(yaml.safe_dump({"model": preset.model.to_dict(), "train": _plain(preset.train)}))
    start = time.perf_counter()
    _codec_cli(
        "train",
        "--config",
        str(config),
        "--run-dir",
        str(out / "run"),
        "--accelerator",
        "cpu",
        "--no-progress",
    )
    seconds = time.perf_counter() - start
    _codec_cli("export", str(out / "run" / "checkpoints" / "last.ckpt"), "-o", str(out / "model"), "--force")
    codec = Codec.from_pretrained(out / "model")
    wav = torch.cat(clips)
    codes = codec.encode(wav[None, None], codec.sample_rate)
    same, err = stream_parity(codec, clips[0])
    mel = scalars(out / "run", "train/loss/mel")
    enc_ms, dec_ms = frame_latency(codec, args.frames, 20)
    return {
        "preset": name,
        "steps": args.steps,
        "train_seconds": seconds,
        "frame_rate": codec.frame_rate,
        "hop_length": codec.hop_length,
        "codebooks": codec.total_codebooks,
        "codebook_size": codec.codebook_size,
        "bitrate": codec.bitrate(),
        "tokens_per_second": codes.codes[0].numel() / (wav.shape[0] / codec.sample_rate),
        "lookahead_ms": codec.lookahead / codec.sample_rate * 1e3,
        "mel_loss_first": statistics.fmean(mel[:3]) if mel else float("nan"),
        "mel_loss_last": statistics.fmean(mel[-3:]) if mel else float("nan"),
        "perplexity": (scalars(out / "run", "train/codebook_perplexity_mean") or [float("nan")])[-1],
        "stream_codes_equal": same,
        "stream_max_abs_diff": err,
        "encode_ms": enc_ms,
        "decode_ms": dec_ms,
        "params": sum(p.numel() for p in codec.model.parameters()),
        "scores": evaluate(codec.model, clips, [codec.total_codebooks]),
    }


def _plain(obj: Any) -> Any:
    """A train config as YAML-safe plain data (tuples as lists)."""
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _row(r: dict[str, Any]) -> list[str]:
    s = r["scores"][str(r["codebooks"])]
    ref = r.get("speech_16k_ms")
    latency = f"{r['encode_ms']:.3f} / {r['decode_ms']:.3f}"
    if ref:
        latency += f" (speech_16k: {ref[0]:.3f} / {ref[1]:.3f} per 20 ms)"
    usage = "-"
    if "codes_used" in r:
        usage = f"{100 * r['codes_used']:.0f}% / {r['dev_perplexity']:.0f}"
    frame_ms = 1e3 / r["frame_rate"]
    return [
        r.get("label", r["preset"]), f"{r['frame_rate']:g} Hz x {r['codebooks']} x {r['codebook_size']}",
        f"{r['tokens_per_second']:.1f}", f"{r['bitrate']:g}",
        f"{r['lookahead_ms']:g} ({frame_ms + r['lookahead_ms']:g})", latency, f"{r['params'] / 1e6:.2f} M",
        f"{r['steps']} ({r['train_seconds'] / r['steps']:.1f} s/step)",
        f"{r['mel_loss_first']:.2f} -> {r['mel_loss_last']:.2f}", f"{r['perplexity']:.0f}", usage,
        f"{s['mel_distance']:.2f}", f"{s.get('pesq_wb', float('nan')):.2f}",
        "yes" if r["stream_codes_equal"] and r["stream_max_abs_diff"] <= 1e-5 else "NO",
    ]  # fmt: skip


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    header = [
        "preset", "frames x codebooks x size", "tokens/s (measured)", "bps",
        "lookahead ms (algorithmic latency)", "encode / decode ms per frame, 1 thread", "params",
        "steps", "train mel loss", "train usage perplexity", "dev codes used / perplexity", "dev mel dist",
        "dev PESQ-wb", "streaming = offline",
    ]  # fmt: skip
    loads = sorted({r["load"] for r in results if "load" in r})
    return "\n".join([
        *harness.machine_lines(),
        f"- Commit: {harness.git_revision()}; command: `{harness.command_line(_MODULE)}`",
        "- Each preset: `codec train` on one CPU thread (`nice -n 10`, `OMP_NUM_THREADS=1`) for the steps "
        f"shown (batch {args.batch_size}, {args.segment_seconds} s crops, warmup a tenth of the steps, "
        "spectral losses only), `codec export`, reload with `Codec.from_pretrained`. Token rate: codes per "
        "second of 16 s of dev audio (a partial last frame rounds up). Latency: median over "
        f"{args.frames} frames of `stream.encode` (one frame of audio) and `stream.decode` (its codes), "
        "batch 1, with speech_16k (random weights) timed in the same run; algorithmic latency = frame + "
        "lookahead. Train mel loss: mean of the first and last 3 values logged every 10 steps. Train usage "
        "perplexity: of the codes of the last 10 training steps (mean over codebooks; at most the "
        f"{args.batch_size} x 10 crops' frames). Codes "
        f"used / perplexity: over {args.usage_files} dev files cut to 4 s, per codebook, mean over "
        "codebooks. Dev mel distance and PESQ-wb: all codebooks, 4 dev files cut to 4 s. Streaming = "
        "offline: codes equal and samples within 1e-5 after streaming in odd chunks.",
        f"- Load average when timing: {', '.join(loads) or 'n/a'} (a shared 2-core machine: other jobs ran).",
        "- A few hundred CPU steps show that a preset trains, exports and streams; they are far from a "
        "usable model (the bundled speech_16k trained 12000 steps).",
        "",
        harness.markdown_table(header, [_row(r) for r in results]),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/presets"))
    p.add_argument("--presets", nargs="+", default=PRESETS)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--segment-seconds", type=float, default=1.28)
    p.add_argument("--data", type=Path, nargs="+", default=[Path("../shared/data/train")])
    p.add_argument("--dev", type=Path, default=Path("../shared/data/dev"))
    p.add_argument("--frames", type=int, default=300, help="timed streaming frames per preset")
    p.add_argument("--usage-files", type=int, default=40, help="dev files (4 s each) for codebook usage")
    p.add_argument("--report-only", action="store_true", help="only rebuild the table from OUT")
    p.add_argument(
        "--remeasure", action="store_true", help="re-time latency and measure usage of the exported models"
    )
    harness.add_common_args(p)
    args = p.parse_args(argv)
    for name in [] if args.report_only or args.remeasure else args.presets:
        clips = dev_subset(args.dev, 4, 4.0, 16000)
        result = run_preset(name, args, clips)
        (args.out / name / "result.json").write_text(json.dumps(result, indent=1))
    results = [json.loads((args.out / n / "result.json").read_text()) for n in args.presets]
    if args.remeasure:
        harness.wait_for_quiet(args.wait_quiet)
        results = [remeasure(r, args.out / r["preset"], args) for r in results]
        for r in results:
            (args.out / r["preset"] / "result.json").write_text(json.dumps(r, indent=1))
    text = report(results, args)
    print(f"## {SECTION}\n\n{text}")
    if args.write_results:
        harness.write_section(SECTION, text, Path(args.write_results))
    return text


if __name__ == "__main__":
    main()
