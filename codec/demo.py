"""``codec demo``: encode and decode the bundled example clip, print bitrate and quality.

The quick start's one command: it needs no input file, shows the token shape and bitrate,
and scores the round trip (PESQ-wb and STOI when the ``pesq``/``pystoi`` packages are
installed, SI-SDR and mel distance always).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLE_NAME = "example.flac"


@dataclass(frozen=True)
class DemoResult:
    """What one round trip gave.

    Attributes:
        seconds: clip duration.
        codes_shape: ``(B, K, F)`` of the tokens.
        bitrate: bits per second at ``K`` codebooks.
        scores: metric name -> value (metrics whose package is missing are left out).
        unscored: metric name -> why it gave no value for this audio (PESQ on silence).
    """

    seconds: float
    codes_shape: tuple[int, ...]
    bitrate: float
    scores: dict[str, float]
    unscored: dict[str, str] = field(default_factory=dict)


def example_path(model: str | None = None) -> Path:
    """The example clip shipped with a bundled model (default: the default model)."""
    from codec import pretrained

    return pretrained.model_dir(model) / EXAMPLE_NAME


def run_round_trip(
    codec, path: Path, num_codebooks: int | None = None, output: Path | None = None, replace: bool = True
) -> DemoResult:
    """Encode ``path`` with ``codec`` (any :class:`codec.backends.Backend`), decode it and score the result.

    Args:
        codec: the model.
        path: any audio file; scored at the model's rate, mono (channel mean).
        num_codebooks: codebooks to use (default: all).
        output: also write the decoded audio here (atomically).
        replace: whether ``output`` may replace an existing file.
    """
    import torch

    from codec import load_audio, metrics
    from codec.audio import resample
    from codec.pipeline.audiofile import AudioFileSink

    wav, sr = load_audio(path)
    ref = wav.mean(0)
    if sr != codec.sample_rate:
        ref = resample(ref[None, None], sr, codec.sample_rate)[0, 0]
    with torch.inference_mode():
        codes = codec.encode(ref, sample_rate=codec.sample_rate, num_codebooks=num_codebooks)
        decoded = codec.decode(codes)[0, 0]
    if output is not None:
        sink = AudioFileSink(output, codec.sample_rate, replace=replace)
        try:
            sink.write(decoded[None])
            sink.commit()
        except BaseException:
            sink.abort()
            raise
    rate = codec.sample_rate
    scores = {
        "SI-SDR (dB)": metrics.si_sdr(ref, decoded),
        "mel distance": metrics.mel_distance(ref, decoded, rate),
    }
    unscored = {}
    for name, fn in (("PESQ-wb", metrics.pesq_wb), ("STOI", metrics.stoi)):
        try:
            scores[name] = fn(ref, decoded, rate)
        except metrics.MetricUnavailable:
            continue
        except Exception as err:  # the metric refuses this audio (PESQ finds no speech in silence)
            text = (
                err.args[0].decode(errors="replace")
                if err.args and isinstance(err.args[0], bytes)
                else str(err)
            )
            unscored[name] = (text.strip().splitlines() or [type(err).__name__])[0][:120]
    k = codes.codes.shape[1]
    return DemoResult(ref.shape[-1] / rate, tuple(codes.codes.shape), codec.bitrate(k), scores, unscored)


def add_demo_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``codec demo``; the handler is :func:`run_demo`."""
    p = subparsers.add_parser(
        "demo", help="encode and decode the bundled example clip; print bitrate and PESQ"
    )
    from codec.cli import MODEL_HELP

    p.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("-n", "--num-codebooks", type=int, help="codebooks to use (default: all)")
    p.add_argument("--input", help="an audio file to use instead of the bundled example")
    p.add_argument("-o", "--output", help="write the decoded audio to this file (.wav/.flac/.ogg)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(handler=run_demo)
    return p


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``codec demo``: its exit status from the shared table (:mod:`codec.exitcodes`)."""
    from codec import exitcodes

    return exitcodes.run(lambda: _demo(args))


def _demo(args: argparse.Namespace) -> int:
    from codec import backends
    from codec.backends.base import Backend
    from codec.commands import check_target
    from codec.exitcodes import UsageError
    from codec.model_options import load_codec
    from codec.pipeline.audiofile import output_format

    if args.input:
        path = Path(args.input)
    elif args.model and backends.is_spec(args.model):
        path = example_path()  # another codec's weights: the bundled default's clip is plain speech
    else:
        model_dir = Path(args.model) if args.model and Path(args.model).is_dir() else None
        path = model_dir / EXAMPLE_NAME if model_dir else example_path(args.model)
        if not path.is_file():
            raise UsageError(f"{path}: this model ships no example clip; pass --input FILE")
    output = None
    if args.output is not None:
        output = Path(args.output)
        output_format(output)
        check_target(output, args.force, str(path))
    codec: Backend = load_codec(args.model)
    if args.num_codebooks is not None and args.num_codebooks not in codec.codebook_counts():
        valid = codec.codebook_counts()
        raise UsageError(
            f"--num-codebooks must be one of {', '.join(map(str, valid))}"
            if len(valid) < codec.total_codebooks
            else f"--num-codebooks must be between 1 and {codec.total_codebooks}"
        )
    result = run_round_trip(codec, path, args.num_codebooks, output, replace=args.force)
    b, k, f = result.codes_shape
    print(f"{path.name}: {result.seconds:.2f} s -> codes [{b}, {k}, {f}] at {result.bitrate / 1000:g} kbps")
    print("  " + ", ".join(f"{name} {value:.3g}" for name, value in result.scores.items()))
    for name, why in result.unscored.items():
        print(f"  {name}: not scored ({why})")
    if "PESQ-wb" not in result.scores and "PESQ-wb" not in result.unscored:
        print("  (PESQ-wb and STOI need: pip install 'codec[bench]')")
    if args.output:
        print(f"  decoded audio: {args.output}")
    return 0
