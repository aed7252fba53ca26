"""Reconstruction quality of a model on a folder of audio: PESQ-wb, STOI, SI-SDR, mel distance.

Usage (from the repository root)::

    python benchmarks/reconstruction/evaluate.py --model speech_16k --data ../shared/data/dev
    python benchmarks/reconstruction/evaluate.py --model path/to/model_dir --data DIR \\
        --codebooks 3 6 12 --output table.md --write-results

Every file is read whole, downmixed to mono, encoded with the public API at each codebook
count (``Codec.encode(..., num_codebooks=k)``), decoded, and compared with the original at
the model's rate.  Metrics are averaged over files (mean, with the standard deviation).
Codebook usage entropy is pooled over all frames of all files at full depth.

Prints a Markdown table; ``--output`` writes it to a file, ``--write-results`` also replaces
the "Reconstruction quality" section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.speed import harness
from codec import Codec, load_audio
from codec import metrics as M
from codec.audio import resample

SECTION = "Reconstruction quality"
METRICS = ("pesq_wb", "stoi", "si_sdr", "mel_distance")
AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3", ".opus")


@dataclass
class Scores:
    """Per-file values of every metric at one codebook count."""

    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    def add(self, ref: torch.Tensor, est: torch.Tensor, sr: int) -> None:
        self.values["pesq_wb"].append(M.pesq_wb(ref, est, sr))
        self.values["stoi"].append(M.stoi(ref, est, sr))
        self.values["si_sdr"].append(M.si_sdr(ref, est))
        self.values["mel_distance"].append(M.mel_distance(ref, est, sr))

    def mean(self, name: str) -> float:
        return statistics.fmean(self.values[name])

    def cell(self, name: str) -> str:
        vals = self.values[name]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        digits = 2 if name in ("pesq_wb", "si_sdr") else 3
        return f"{statistics.fmean(vals):.{digits}f} ± {sd:.{digits}f}"


@dataclass
class Evaluation:
    """Scores per codebook count, pooled code counts and what was evaluated."""

    scores: dict[int, Scores]
    code_counts: torch.Tensor  # [K, codebook_size]
    files: int
    seconds: float


def find_files(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise SystemExit(f"evaluate: no audio files under {folder}")
    return files[:limit] if limit else files


def evaluate(codec: Codec, files: list[Path], codebooks: list[int]) -> Evaluation:
    """Encode/decode every file at every codebook count and score it against the original."""
    sr = codec.sample_rate
    scores = {k: Scores() for k in codebooks}
    counts = torch.zeros(codec.total_codebooks, codec.codebook_size)
    seconds = 0.0
    for path in files:
        wav, file_sr = load_audio(path)
        ref = wav.mean(0)
        if file_sr != sr:
            ref = resample(ref[None, None], file_sr, sr)[0, 0]
        seconds += ref.shape[-1] / sr
        with torch.inference_mode():
            full = codec.encode(ref, sample_rate=sr).codes[0]  # [K, F]
            counts += M.code_usage(full, codec.codebook_size)
            for k in codebooks:
                est = codec.decode(codec.encode(ref, sample_rate=sr, num_codebooks=k))[0, 0]
                scores[k].add(ref, est, sr)
    return Evaluation(scores, counts, len(files), seconds)


def report(codec: Codec, ev: Evaluation, data: Path, command: str) -> str:
    """The Markdown section: context lines, the metric table and the codebook entropy table."""
    header = ["codebooks", "kbps", "PESQ-wb", "STOI", "SI-SDR (dB)", "mel distance"]
    rows = [
        [k, f"{codec.bitrate(k) / 1000:g}", *(ev.scores[k].cell(m) for m in METRICS)]
        for k in sorted(ev.scores)
    ]
    bits = math.log2(codec.codebook_size)
    entropies = [M.entropy_bits(c) for c in ev.code_counts]
    ent_rows = [[k, f"{h:.2f}", f"{100 * h / bits:.1f}%", f"{2**h:.0f}"] for k, h in enumerate(entropies)]
    lines = [
        f"- Model: `{codec.name}` ({codec.sample_rate} Hz, {codec.frame_rate:g} frames/s, "
        f"{codec.total_codebooks} x {codec.codebook_size} codes)",
        f"- Data: `{data}`, {ev.files} files, {ev.seconds / 60:.1f} min; "
        "mean ± standard deviation over files",
        f"- Command: `{command}`",
        f"- Commit: {harness.git_revision()}",
        *harness.machine_lines(("pesq", "pystoi")),
        "",
        harness.markdown_table(header, rows),
        "",
        f"Codebook usage entropy at full depth (bits; maximum log2({codec.codebook_size}) = {bits:g}):",
        "",
        harness.markdown_table(["level", "entropy (bits)", "of maximum", "perplexity"], ent_rows),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="speech_16k", help="bundled model name or model directory")
    parser.add_argument(
        "--data", required=True, type=Path, help="folder of reference audio (searched recursively)"
    )
    parser.add_argument("--codebooks", type=int, nargs="+", default=[3, 6, 12], help="codebook counts")
    parser.add_argument("--limit", type=int, help="only the first N files (quick checks)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--output", type=Path, help="also write the Markdown section to this file")
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    codec = Codec.from_pretrained(args.model)
    bad = [k for k in args.codebooks if not 1 <= k <= codec.total_codebooks]
    if bad:
        parser.error(f"--codebooks must be between 1 and {codec.total_codebooks}, got {bad}")
    files = find_files(args.data, args.limit)
    start = time.perf_counter()
    ev = evaluate(codec, files, sorted(set(args.codebooks)))
    body = report(codec, ev, args.data, harness.command_line("benchmarks/reconstruction/evaluate.py"))
    body += f"\n\nEvaluated in {time.perf_counter() - start:.0f} s." + (f" {args.note}" if args.note else "")
    print(f"## {SECTION}\n\n{body}")
    if args.output:
        args.output.write_text(f"## {SECTION}\n\n{body}\n")
    if args.write_results:
        harness.write_section(SECTION, body, Path(args.write_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
