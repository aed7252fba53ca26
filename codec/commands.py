"""What ``codec encode``, ``codec decode`` and ``codec info`` do with their parsed arguments.

Each command picks a source and a sink of :mod:`codec.pipeline` from its arguments, checks
the output up front (so nothing runs for a result that could not be written), and runs the
pipeline.  Commands only raise; :mod:`codec.exitcodes` turns that into one line and a status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from codec import pretrained
from codec.api import Codec
from codec.exitcodes import UsageError, report
from codec.fileformat import EXTENSION, MODEL_NAME, STREAM_EXTENSION, StreamHeader
from codec.pipeline import folder
from codec.pipeline.audiofile import (
    AudioFileSink,
    AudioFileSource,
    audio_info,
    check_write_limits,
    output_format,
)
from codec.pipeline.pcm import PcmSink, PcmSource
from codec.pipeline.run import decode, encode
from codec.pipeline.tokenio import TokenFileSink, TokenSource, TokenStreamSink, check_header, token_file_ok
from codec.pretrained import NoBundledModelError

# Inputs coded in folder mode (what libsndfile reads; raw headerless files are left out).
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64",
                  ".rf64", ".caf"}  # fmt: skip
TOKEN_SUFFIXES = {EXTENSION, STREAM_EXTENSION}


def load_codec(model: str | None) -> Codec:
    """The model named by ``--model`` (a bundled name or a directory; default: the bundled default)."""
    try:
        return Codec.from_pretrained(model)
    except NoBundledModelError as err:
        raise UsageError(str(err) if model is None else f"--model {model}: {err}") from None
    except FileNotFoundError:
        raise UsageError(f"--model {model}: no such model directory or bundled model") from None


def model_for(args: argparse.Namespace, header: StreamHeader, name: object, cache: dict[str, Codec]) -> Codec:
    """``--model`` if given, else the bundled model the tokens name; checked against the header.

    A token file names its model; that name is only ever looked up among the bundled models,
    never used as a path, so a file cannot make decode load a directory the user did not name.
    """
    key = args.model or f"bundled:{header.model}"
    if key not in cache:
        if args.model:
            cache[key] = load_codec(args.model)
        else:
            have = ", ".join(pretrained.available()) or "no bundled model exists yet"
            if not MODEL_NAME.fullmatch(header.model) or header.model not in pretrained.available():
                raise UsageError(
                    f"{name}: made by model {header.model!r}, which this installation does not bundle "
                    f"({have}); pass --model DIR"
                )
            cache[key] = Codec.from_pretrained(pretrained.model_dir(header.model))
    check_header(cache[key], header, name)
    return cache[key]


def check_target(target: Path, force: bool, source: str) -> None:
    """Refuse an output that cannot or must not be written, before any work is done."""
    if str(target) in ("", "."):
        raise UsageError("empty output name: give a file name after -o")
    if source != "-" and target.resolve() == Path(source).resolve():
        raise UsageError(f"{target}: output would replace the input")
    if target.is_dir():
        raise UsageError(f"{target}: is a directory (give a file name)")
    if (target.exists() or target.is_symlink()) and not force:
        raise UsageError(f"{target}: already exists (use --force to replace it)")
    folder_ = next((p for p in [target.parent, *target.parent.parents] if p.exists()), Path("."))
    if not folder_.is_dir():
        raise UsageError(f"{folder_}: is a file, not a folder (cannot hold {target})")
    if not os.access(folder_, os.W_OK):
        raise UsageError(f"{folder_}: output folder is not writable")


def target_for(source: str, output: str, suffix: str) -> Path:
    """The output file: ``output`` itself, or ``source``'s name with ``suffix`` inside a folder."""
    if output == "":
        raise UsageError("empty output name: give a file name after -o")
    out = Path(output)
    if output.endswith(("/", os.sep)) or out.is_dir():
        return out / (Path(source).stem + suffix if source != "-" else "stdin" + suffix)
    return out


def std(name: str) -> BinaryIO:
    """``sys.stdin.buffer`` / ``sys.stdout.buffer``; a closed one is a usage error, not a crash."""
    stream = getattr(sys, name, None)
    if stream is None or getattr(stream, "closed", False) or not hasattr(stream, "buffer"):
        raise UsageError(f"{name} is closed: give a file instead of -")
    return stream.buffer


def progress_bar(args: argparse.Namespace, **kwargs: Any) -> tqdm:
    # disable=None: shown on a terminal only, so pipes and logs stay clean.
    return tqdm(disable=True if args.quiet else None, file=sys.stderr, dynamic_ncols=True, **kwargs)


def _check_stdout(output: str) -> None:
    if output == "-" and std("stdout").isatty():
        raise UsageError("refusing to write binary data to a terminal: pipe or redirect stdout")


# -- encode ----------------------------------------------------------------------------------


def run_encode(args: argparse.Namespace) -> int:
    _check_stdout(args.output)
    if args.input != "-" and (args.sample_rate or args.channels):
        raise UsageError(
            "--sample-rate and --channels describe raw PCM on stdin (IN = -); files carry their own"
        )
    if args.input != "-" and Path(args.input).is_dir():
        return _run_folder(args, AUDIO_SUFFIXES, EXTENSION, _encode_job(args))
    if args.input != "-":
        audio_info(args.input)  # fail on a missing or non-audio input before loading the model
    else:
        std("stdin")
    target = None if args.output == "-" else target_for(args.input, args.output, EXTENSION)
    if target is not None:
        if target.suffix.lower() in AUDIO_SUFFIXES:
            raise UsageError(f"{target}: encode writes tokens, not audio (name the output *{EXTENSION})")
        check_target(target, args.force, args.input)
    _encode_job(args)(args.input, target, args.force)
    return 0


def _encode_job(args: argparse.Namespace) -> Callable[[str | Path, Path | None, bool], None]:
    """``job(input, target, replace)``: a file or stdin (``-``) to a token file or stdout (``None``)."""
    codec = load_codec(args.model)
    k = args.num_codebooks
    if k is not None and not 1 <= k <= codec.total_codebooks:
        raise UsageError(
            f"--num-codebooks {k} is out of range: model {codec.name!r} has "
            f"1..{codec.total_codebooks} codebooks"
        )

    def job(source: str | Path, target: Path | None, replace: bool) -> None:
        if str(source) == "-":
            src: AudioFileSource | PcmSource = PcmSource(
                std("stdin"), args.sample_rate or codec.sample_rate, args.channels or 1,
                args.pcm_format, args.block_seconds,
            )  # fmt: skip
        else:
            src = AudioFileSource(source, args.block_seconds)
        if target is None:
            sink: Any = TokenStreamSink(std("stdout"))
        elif target.suffix.lower() == STREAM_EXTENSION:
            sink = TokenStreamSink(target, replace=replace)
        else:
            sink = TokenFileSink(target, replace=replace)
        duration = getattr(src, "info", None) and src.info.duration
        with progress_bar(args, total=duration and round(duration, 1), unit="s", leave=False) as bar:
            encode(codec, src, sink, k, args.block_seconds, lambda n: bar.update(n / src.sample_rate))

    return job


# -- decode ----------------------------------------------------------------------------------


def run_decode(args: argparse.Namespace) -> int:
    _check_stdout(args.output)
    if args.input != "-" and Path(args.input).is_dir():
        return _run_folder(args, TOKEN_SUFFIXES, "." + args.format, _decode_job(args))
    if args.input == "-":
        std("stdin")
    target = None if args.output == "-" else target_for(args.input, args.output, "." + args.format)
    if target is not None:
        output_format(target)  # refuses an unsupported extension before any work
        if args.sample_rate:
            check_write_limits(target, args.sample_rate)
        check_target(target, args.force, args.input)
    _decode_job(args)(args.input, target, args.force)
    return 0


def _decode_job(args: argparse.Namespace) -> Callable[[str | Path, Path | None, bool], None]:
    """``job(input, target, replace)``: a token file/stream (``-``: stdin) to audio (``None``: stdout)."""
    cache: dict[str, Codec] = {}

    def job(source: str | Path, target: Path | None, replace: bool) -> None:
        stdin = std("stdin") if str(source) == "-" else None
        with TokenSource(source, stdin) as src:
            codec = model_for(args, src.header, src.name, cache)
            out_sr = args.sample_rate or src.header.original_sample_rate
            if target is None:
                decode(codec, src, PcmSink(std("stdout"), args.pcm_format), out_sr)
                return
            check_write_limits(target, out_sr, src.header.channels)  # before any decoding
            sink = AudioFileSink(target, out_sr, replace=replace)
            with progress_bar(args, total=src.frames, unit="frame", leave=False) as bar:
                decode(codec, src, sink, out_sr, bar.update)

    return job


# -- folders and info -------------------------------------------------------------------------


def _run_folder(args: argparse.Namespace, suffixes: set[str], out_suffix: str, job: Callable) -> int:
    if args.output == "-":
        raise UsageError(f"{args.input}: a folder cannot be written to stdout (give an output folder)")
    if args.output == "":
        raise UsageError("empty output name: give a folder after -o")
    dst = Path(args.output)
    jobs = folder.folder_jobs(Path(args.input), dst, suffixes, out_suffix)
    near = next((p for p in [dst, *dst.parents] if p.exists()), Path("."))
    if not os.access(near, os.W_OK):
        raise UsageError(f"{near}: output folder is not writable")
    complete = token_file_ok if out_suffix in TOKEN_SUFFIXES else _audio_ok

    def say(err: BaseException) -> None:
        with tqdm.external_write_mode(file=sys.stderr):
            report(err)

    with progress_bar(args, total=len(jobs), unit="file", desc=str(args.input)) as bar:

        def tick(items: list[folder.FolderJob]) -> Any:
            for item in items:
                yield item
                bar.update(1)

        result = folder.run_folder(
            jobs, lambda j, replace: job(j.source, j.target, replace), args.force, args.skip_existing,
            complete, say, tick,
        )  # fmt: skip
    if result.failed:
        print(
            f"codec: {len(result.failed)} of {result.total} files failed (the others were written)",
            file=sys.stderr,
        )
    return result.status


def _audio_ok(path: Path) -> bool:
    try:
        for _ in AudioFileSource(path).blocks():
            pass
    except (ValueError, OSError):
        return False
    return True


def run_info(args: argparse.Namespace) -> int:
    from codec.info import describe

    std("stdout")
    fields = describe(args.path)
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        width = max(len(k) for k in fields)
        for key, value in fields.items():
            print(f"{key:<{width}}  {value}")
    return 0
