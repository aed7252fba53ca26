"""Reconstruction quality of a model beside Lyra v2 and Opus, through ``codec bench quality``.

Usage (from the repository root)::

    python benchmarks/reconstruction/evaluate.py --data ../shared/data/dev --write-results \\
        --lyra-reference 2.21 2.73 2.97
    python benchmarks/reconstruction/evaluate.py --model path/to/model_dir --data DIR \\
        --codebooks 3 6 12 --baselines --output table.md          # this model only

A thin use of the bench suite (:mod:`codec.bench`): the model at each codebook count (as
``ours:MODEL@KBPS``) and the baselines (default Lyra v2 at 3.2/6/9.2 kbps and Opus at
6/9/12 kbps) are run by :func:`codec.bench.quality.run_quality` with its metrics, process pool
and cache, and the report folder (``--report``, default ``benchmarks/reconstruction/report``:
tables, plots, ``report.html``) is written by :func:`codec.bench.report.write_report`.  This
script adds the ``benchmarks/RESULTS.md`` section: the context lines, the metric table and
the model's codebook usage at its deepest setting.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

from codec import Codec
from codec.bench import harness
from codec.bench.data import collect
from codec.bench.quality import QualityRun, run_quality
from codec.bench.registry import build_adapters, parse_spec
from codec.bench.report import write_report
from codec.bench.summary import metric_table, settings, usage_table

SECTION = "Reconstruction quality"
METRICS = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance", "stft_distance"]
BASELINES = ["lyra@3.2,6,9.2", "opus@6,9,12"]
REPORT = Path("benchmarks") / "reconstruction" / "report"


def usage_lines(run: QualityRun, codec: Codec) -> list[str]:
    """The model's codebook usage at its deepest setting: entropy, perplexity, dead codes per level."""
    ours = [a for a in run.adapters if a.kind == "ours" and a.key in run.usage]
    if not ours:
        return []
    deepest = max(ours, key=lambda a: a.kbps)
    bits = math.log2(codec.codebook_size)
    rows = [
        [k, f"{u['entropy_bits']:.2f}", f"{100 * u['entropy_bits'] / bits:.1f}%", f"{u['perplexity']:.0f}",
         u["dead_codes"]]
        for k, u in enumerate(usage_table(run.usage[deepest.key]))
    ]  # fmt: skip
    return [
        f"Codebook usage entropy of {deepest.name}, pooled over all files "
        f"(bits; maximum log2({codec.codebook_size}) = {bits:g}):",
        "",
        harness.markdown_table(["level", "entropy (bits)", "of maximum", "perplexity", "dead codes"], rows),
    ]


def lyra_check(run: QualityRun, reference: list[float]) -> list[str]:
    """Lyra v2's mean PESQ-wb here against reference figures (3.2, 6, 9.2 kbps), within 0.05."""
    if not reference:
        return []
    means = {s.kbps: s.stats["pesq_wb"].mean for s in settings(run) if s.kind == "lyra"}
    rows = []
    for kbps, want in zip((3.2, 6.0, 9.2), reference, strict=False):
        got = means.get(kbps)
        if got is None:
            rows.append([f"{kbps:g}", f"{want:.2f}", "not run", "-"])
            continue
        rows.append([f"{kbps:g}", f"{want:.2f}", f"{got:.3f}", "yes" if abs(got - want) <= 0.05 else "NO"])
    return [
        "Lyra v2 against its reference PESQ-wb figures (`--lyra-reference`; agreement within 0.05):",
        "",
        harness.markdown_table(["kbps", "reference PESQ-wb", "this run", "within 0.05"], rows),
        "",
    ]


def plot_lines(report: Path, results: Path) -> list[str]:
    """Links to the report's plots, relative to the RESULTS.md they are written into."""
    base = os.path.relpath(report, results.parent)
    pngs = sorted(report.glob("metric_*.png")) + sorted(report.glob("spectrogram_*.png"))
    links = ", ".join(f"[{p.stem.split('_', 1)[1]}]({base}/{p.name})" for p in pngs)
    main = f"{base}/metric_pesq_wb.png"
    return [f"Plots: {links}.", "", f"![PESQ-wb against achieved bitrate]({main})", ""] if pngs else []


def section(
    run: QualityRun,
    codec: Codec,
    data: list[str],
    command: str,
    report: Path,
    lyra_reference: list[float],
    results: Path = harness.RESULTS_PATH,
) -> str:
    """The RESULTS.md section body."""
    seconds = sum(r.seconds for r in run.rows if r.key == run.adapters[0].key)
    lines = [
        f"- Model: `{codec.name}` ({codec.sample_rate} Hz, {codec.frame_rate:g} frames/s, "
        f"{codec.total_codebooks} x {codec.codebook_size} codes); baselines: "
        + ", ".join(sorted({a.label for a in run.adapters if a.kind != "ours"}) or ["none"]),
        f"- Data: `{' '.join(data)}`, {len(run.files)} files, {seconds / 60:.1f} min; "
        "mean ± 95% confidence interval over files; every metric at 16 kHz",
        f"- Command: `{command}`",
        f"- Commit: {harness.git_revision()}",
        *harness.machine_lines(("pesq", "pystoi", "ai-edge-litert")),
        f"- Run: {run.computed} pairs computed, {run.reused} reused from the cache, {run.wall_seconds:.0f} s",
        f"- Report folder: `{report}` (per-file CSV, summary.json, plots; `report.html` to listen)",
        "",
        metric_table(run),
        "",
        *lyra_check(run, lyra_reference),
        *plot_lines(report, results),
        *usage_lines(run, codec),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="bundled model name or model directory")
    parser.add_argument("--data", required=True, nargs="+", help="folders, files or manifests of audio")
    parser.add_argument("--codebooks", type=int, nargs="+", default=[3, 6, 12], help="codebook counts")
    parser.add_argument("--baselines", nargs="*", default=BASELINES, help="codec SPECs beside the model")
    parser.add_argument("--limit", type=int, help="only the first N files (quick checks)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the coding process")
    parser.add_argument("--jobs", type=int, default=2, help="metric worker processes")
    parser.add_argument("--report", type=Path, default=REPORT, help="the bench report folder")
    parser.add_argument("--output", type=Path, help="also write the Markdown section to this file")
    parser.add_argument(
        "--lyra-reference",
        type=float,
        nargs="*",
        default=[],
        metavar="PESQ",
        help="Lyra v2's known PESQ-wb at 3.2, 6 and 9.2 kbps on this data, checked within 0.05",
    )
    harness.add_common_args(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    codec = Codec.from_pretrained(args.model)
    bad = [k for k in args.codebooks if not 1 <= k <= codec.total_codebooks]
    if bad:
        parser.error(f"--codebooks must be between 1 and {codec.total_codebooks}, got {bad}")
    kbps = ",".join(f"{codec.bitrate(k) / 1000:g}" for k in sorted(set(args.codebooks)))
    specs = [f"ours:{args.model or codec.name}@{kbps}", *args.baselines]
    adapters = [a for s in specs for a in build_adapters(parse_spec(s))]
    print(harness.wait_for_quiet(args.wait_quiet), file=sys.stderr)
    start = time.perf_counter()
    run = run_quality(
        collect(args.data, args.limit), adapters, METRICS, args.report / "cache", jobs=args.jobs
    )
    command = harness.command_line("benchmarks/reconstruction/evaluate.py")
    write_report(run, args.report, {"command": command, "data": " ".join(args.data)})
    results = Path(args.write_results) if args.write_results else harness.RESULTS_PATH
    body = section(run, codec, args.data, command, args.report, args.lyra_reference, results)
    body += f"\n\nEvaluated in {time.perf_counter() - start:.0f} s." + (f" {args.note}" if args.note else "")
    print(f"## {SECTION}\n\n{body}")
    if args.output:
        args.output.write_text(f"## {SECTION}\n\n{body}\n")
    if args.write_results:
        harness.write_section(SECTION, body, Path(args.write_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
