"""``codec bench quality`` and ``codec bench speed``: argument parsing and the two handlers.

Registered on the ``codec`` command by :func:`add_bench_parser`.  Bad input (an unknown codec,
a bitrate a codec cannot give, a missing folder) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
from pathlib import Path

DEFAULT_KBPS = "1.5,3,6"
# Shortest --seconds of `bench speed`: a few frames of every codec's stream (Mimi's are 80 ms).
MIN_SPEED_SECONDS = 0.5


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``codec bench {quality,speed}``; the handler is :func:`run_bench`."""
    p = subparsers.add_parser("bench", help="compare codecs: reconstruction quality and speed")
    sub = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    codec_help = (
        "KIND[:MODEL][@KBPS,...] (repeatable; default: ours): ours, lyra, opus, or another codec's "
        "weights: encodec, dac, mimi, snac, speechtokenizer, stablecodec (MODEL a hub id or folder)"
    )
    q = sub.add_parser("quality", help="score codecs on your audio; writes tables, plots and report.html")
    q.add_argument("data", nargs="+", metavar="DATA", help="audio folders, files or CSV/JSONL manifests")
    q.add_argument("--codec", "--model", action="append", dest="codec", metavar="SPEC", help=codec_help)
    q.add_argument(
        "--bitrates", default=DEFAULT_KBPS, help="kbps for a SPEC without @ (default: %(default)s)"
    )
    q.add_argument("--out", required=True, type=Path, help="output folder (its cache/ is reused by reruns)")
    q.add_argument("--jobs", type=int, default=2, help="metric worker processes (0: none; default 2)")
    q.add_argument("--limit", type=int, help="only the first N files")
    q.add_argument("--score-rate", type=int, default=16000, choices=[8000, 16000], help="common scoring rate")
    q.add_argument(
        "--metrics",
        default="core",
        help="comma-separated metric names, 'core' (default: PESQ-wb/nb, STOI, ESTOI, SI-SDR, mel and "
        "MR-STFT distances) or 'all' (also ViSQOL, DNSMOS, speaker similarity and the ASR word error "
        "rate 'wer' where installed)",
    )
    q.add_argument(
        "--asr-model",
        default=None,
        metavar="REF",
        help="Whisper model of the 'wer' metric: a hub id or a folder (default: openai/whisper-base.en)",
    )
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    q.set_defaults(bench_run=run_quality_command)
    s = sub.add_parser("speed", help="real-time factors, streaming latency, parameters and peak memory")
    s.add_argument("--codec", "--model", action="append", dest="codec", metavar="SPEC", help=codec_help)
    s.add_argument("--bitrates", default="6", help="kbps for a SPEC without @ (default: %(default)s)")
    s.add_argument("--out", required=True, type=Path, help="output folder")
    s.add_argument("--seconds", type=float, default=10.0, help="input length (default: %(default)s)")
    s.add_argument("--batch", type=int, nargs="+", default=[1, 16], help="batch sizes (default: 1 16)")
    s.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU threads (default: 1 2)")
    s.add_argument("--repeats", type=int, default=3, help="timed calls per point (median)")
    s.set_defaults(bench_run=run_speed_command)
    p.set_defaults(run=run_bench, quiet=False, debug=False)
    return p


def run_bench(args: argparse.Namespace) -> int:
    """Dispatch to the subcommand; bad input -> one line on stderr, exit status 2."""
    from codec.audio import AudioError
    from codec.bench.adapters import SpecError
    from codec.bench.data import InputError

    try:
        return args.bench_run(args)
    except (SpecError, InputError, AudioError) as err:
        print(f"codec: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


def build_all(specs: list[str] | None, bitrates: str):
    """Parse every ``--codec`` (none: ours) and build its adapters (one per bitrate)."""
    from codec.bench.adapters import SpecError
    from codec.bench.registry import build_adapters, parse_spec

    try:
        default = tuple(float(b) for b in bitrates.split(",") if b.strip())
    except ValueError:
        raise SpecError(f"--bitrates: expected kbps numbers separated by commas, got {bitrates!r}") from None
    adapters = []
    for text in specs or ["ours"]:
        adapters += build_adapters(parse_spec(text, default))
    keys = [a.key for a in adapters]
    if len(set(keys)) != len(keys):
        raise SpecError("the same codec setting is named twice")
    return adapters


def context(command: str, extra: dict[str, str]) -> dict[str, str]:
    """Lines that say how, where and when a report was made."""
    import torch

    from codec import __version__
    from codec.bench.harness import cpu_name

    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} logical CPUs, GPU: {gpu}; load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "versions": f"codec {__version__}, torch {torch.__version__}, python {platform.python_version()}",
        **extra,
    }


def command_line() -> str:
    return "codec " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "codec bench"


def run_quality_command(args: argparse.Namespace) -> int:
    """``codec bench quality``: run (reusing the cache), then write the report folder."""
    from tqdm import tqdm

    from codec.bench.adapters import SpecError
    from codec.bench.data import collect
    from codec.bench.quality import run_quality
    from codec.bench.report import write_report

    if args.jobs < 0 or (args.limit is not None and args.limit < 1):
        raise SpecError("--jobs must be >= 0 and --limit >= 1")
    check_out(args.out)
    metrics = pick_metrics(args.metrics)
    items = collect(args.data, args.limit)
    adapters = build_all(args.codec, args.bitrates)
    cache, asr_line = args.out / "cache", {}
    if "wer" in metrics:
        cache, asr_line = asr_setup(args.asr_model, cache)
    total = len(items) * len(adapters)
    with tqdm(total=total, disable=args.quiet, unit="pair", desc="bench") as bar:
        run = run_quality(items, adapters, metrics, cache, args.score_rate, args.jobs, bar.update)
    seconds = sum(r.seconds for r in run.rows if r.key == adapters[0].key)
    extra = {
        "data": f"{', '.join(args.data)}: {len(items)} files, {seconds / 60:.1f} min, "
        "channels averaged to mono",
        "scoring": f"every metric at {args.score_rate} Hz; each codec coded the audio at its own rate",
        "run": f"{run.computed} pairs computed, {run.reused} reused from the cache, "
        f"{run.wall_seconds:.0f} s wall with --jobs {args.jobs}",
        **asr_line,
    }
    written = write_report(run, args.out, context(command_line(), extra))
    if not args.quiet:
        print((args.out / "summary.md").read_text())
        print(f"wrote {len(written)} files to {args.out} (open {args.out / 'report.html'})")
    return 0


def asr_setup(ref: str | None, cache: Path) -> tuple[Path, dict[str, str]]:
    """The ``wer`` metric's model: loaded here once (a model that cannot be had fails the run
    before any coding), named to the metric workers, and its own cache folder (its scores
    depend on it).  Returns the cache folder and the report's line."""
    import hashlib

    from codec.bench import asr

    ref = ref or asr.DEFAULT_MODEL
    os.environ[asr.ENV] = ref
    asr.transcriber(ref)
    tag = hashlib.sha256(ref.encode()).hexdigest()[:12]
    line = f"{ref} (Whisper, transformers), transcripts compared with jiwer"
    return cache / f"asr-{tag}", {"WER": f"decoded audio's transcript against the reference's, by {line}"}


def check_out(out: Path) -> None:
    """Refuse an ``--out`` no report can be written to, before any work."""
    from codec.bench.adapters import SpecError

    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {out}: is a file (the report goes into a folder)")
    near = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not near.is_dir() or not os.access(near, os.W_OK | os.X_OK):
        raise SpecError(f"--out {out}: {near} is not a writable folder")


def pick_metrics(text: str) -> list[str]:
    """``core``, ``all`` or a comma-separated list, checked against what is installed."""
    from codec.bench.adapters import SpecError
    from codec.bench.scoring import CORE, available_metrics

    available = available_metrics()
    if text == "core":
        return [m for m in CORE if m in available]
    if text == "all":
        return available
    wanted = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in available]
    if unknown or not wanted:
        raise SpecError(f"--metrics: unknown or unavailable {unknown} (available: {', '.join(available)})")
    return wanted


def run_speed_command(args: argparse.Namespace) -> int:
    """``codec bench speed``: time every setting, write speed.md / speed.json."""
    from codec.bench.adapters import SpecError
    from codec.bench.speed import run_speed, write_speed

    if args.repeats < 1 or min(args.batch) < 1 or min(args.threads) < 1:
        raise SpecError("--repeats, --batch and --threads must be positive")
    if not args.seconds >= MIN_SPEED_SECONDS:
        raise SpecError(f"--seconds must be at least {MIN_SPEED_SECONDS} (a few frames of every codec)")
    check_out(args.out)
    adapters = build_all(args.codec, args.bitrates)
    results = run_speed(adapters, args.seconds, args.batch, args.threads, args.repeats)
    path = write_speed(results, args.out, context(command_line(), {}))
    print(path.read_text())
    failed = [r for r in results[0] if r.error]
    if failed:  # the others' numbers are written; the status says the table is not whole
        what = " ".join(f"{failed[0].name}: {failed[0].error}".split())
        print(f"codec: error: {what} (see {path})", file=sys.stderr)
        return 1
    return 0
