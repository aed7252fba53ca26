"""What ``codec encode``, ``codec decode`` and ``codec info`` do with their parsed arguments.

Each command picks a source and a sink of :mod:`codec.pipeline` from its arguments, checks
the output up front (so nothing runs for a result that could not be written), and runs the
pipeline.  Commands only raise; :mod:`codec.exitcodes` turns that into one line and a status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from codec.atomic import clear_stale
from codec.audio import AudioError, resampled_length
from codec.backends.base import Backend
from codec.exitcodes import EXIT_BAD_INPUT, EXIT_OK, UsageError, exit_status, report
from codec.formats import AUDIO_SUFFIXES
from codec.model_options import counts_text, load_codec, model_for, resolve_device
from codec.pipeline import folder
from codec.pipeline.audiofile import (
    AudioFileSink,
    AudioFileSource,
    audio_file_complete,
    audio_info,
    check_write_limits,
    output_format,
)
from codec.pipeline.pcm import PcmSink, PcmSource
from codec.pipeline.run import decode, encode
from codec.pipeline.tokenio import (
    TokenFileSink,
    TokenSource,
    TokenStreamSink,
    token_file_summary,
)
from codec.tokenfile.header import EXTENSION, STREAM_EXTENSION

TOKEN_SUFFIXES = {EXTENSION, STREAM_EXTENSION}


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


@dataclass(frozen=True)
class Work:
    """How a command codes one input: ``run(input, target, replace)`` (``target`` ``None``:
    stdout), and ``complete(job)``: whether an existing output is whole and made from its input."""

    run: Callable[[str | Path, Path | None, bool], None]
    complete: Callable[[folder.FolderJob], bool]


def run_encode(args: argparse.Namespace) -> int:
    _check_stdout(args.output)
    source = _sources(args)
    if source != "-" and (args.sample_rate or args.channels):
        raise UsageError(
            "--sample-rate and --channels describe raw PCM on stdin (IN = -); files carry their own"
        )
    if source is None or Path(source).is_dir():
        return _run_folder(args, AUDIO_SUFFIXES, EXTENSION, lambda: _encoder(args))
    if source != "-":
        audio_info(source)  # fail on a missing or non-audio input before loading the model
    else:
        std("stdin")
    target = None if args.output == "-" else target_for(source, args.output, EXTENSION)
    if target is not None and target.suffix.lower() in AUDIO_SUFFIXES:
        raise UsageError(f"{target}: encode writes tokens, not audio (name the output *{EXTENSION})")
    return _run_one(args, source, target, lambda: _encoder(args))


def _encoder(args: argparse.Namespace) -> Work:
    """Encoding with the model and options of ``args``: a file or stdin (``-``) to a token file
    or stdout (``None``)."""
    codec = load_codec(args.model, args.device)
    k = args.num_codebooks
    if k is not None and k not in codec.codebook_counts():
        raise UsageError(
            f"--num-codebooks {k} is out of range: model {codec.name!r} has {counts_text(codec)} codebooks"
        )

    def run(source: str | Path, target: Path | None, replace: bool) -> None:
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

    def complete(job: folder.FolderJob) -> bool:
        found = token_file_summary(job.target)
        try:
            info = audio_info(job.source)
        except AudioError:
            return False  # the job will report the input's problem
        if found is None:
            return False
        header, end = found
        return (
            not codec.identity.mismatch(header.model, header.fingerprint, header.config_hash)
            and header.num_codebooks == (k or codec.total_codebooks)
            and (header.channels, header.original_sample_rate) == (info.channels, info.sample_rate)
            and info.num_samples in (None, end.original_num_samples)
        )

    return Work(run, complete)


# -- decode ----------------------------------------------------------------------------------


def run_decode(args: argparse.Namespace) -> int:
    _check_stdout(args.output)
    source = _sources(args)
    if source is None or Path(source).is_dir():
        return _run_folder(args, TOKEN_SUFFIXES, "." + args.format, lambda: _decoder(args))
    if source == "-":
        std("stdin")
    target = None if args.output == "-" else target_for(source, args.output, "." + args.format)
    if target is not None:
        output_format(target)  # refuses an unsupported extension before any work
        if args.sample_rate:
            check_write_limits(target, args.sample_rate)
    return _run_one(args, source, target, lambda: _decoder(args))


def _decoder(args: argparse.Namespace) -> Work:
    """Decoding with the options of ``args``: a token file/stream (``-``: stdin) to audio
    (``None``: stdout); the model is the one the tokens name unless ``--model`` is given."""
    cache: dict[str, Backend] = {}

    def run(source: str | Path, target: Path | None, replace: bool) -> None:
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

    def complete(job: folder.FolderJob) -> bool:
        found = token_file_summary(job.source)
        if found is None:
            return False  # the job will report the input's problem
        header, end = found
        rate = args.sample_rate or header.original_sample_rate
        length = (
            end.original_num_samples
            if rate == header.original_sample_rate
            else int(resampled_length(end.num_samples, header.sample_rate, rate))
        )
        return audio_file_complete(job.target, rate, header.channels, length)

    return Work(run, complete)


# -- one input, several inputs, folders ---------------------------------------------------------


def _sources(args: argparse.Namespace) -> str | None:
    """The one input (``-`` or a path), or ``None`` when several go to a folder; sets the device."""
    args.device = resolve_device(args.device)
    if len(args.inputs) == 1:
        return args.inputs[0]
    if "-" in args.inputs:
        raise UsageError("- (stdin) cannot be combined with other inputs")
    return None


def _run_one(args: argparse.Namespace, source: str, target: Path | None, make: Callable[[], Work]) -> int:
    """One input to one output (``None``: stdout); ``--skip-existing`` keeps a verified output."""
    if target is not None:
        with contextlib.suppress(OSError):  # an unwritable folder is reported by check_target
            clear_stale(target)  # what a killed writer of this output left, even if nothing is written
        if args.skip_existing and not args.force and target.exists() and source != "-":
            check_target(target, True, source)
            work = make()
            if work.complete(folder.FolderJob(Path(source), target)):
                return 0
            work.run(source, target, True)
            return 0
        check_target(target, args.force, source)
    make().run(source, target, args.force)
    return 0


def _run_folder(
    args: argparse.Namespace, suffixes: set[str], out_suffix: str, make: Callable[[], Work]
) -> int:
    """A folder (its tree mirrored into the output folder) or several inputs (see
    :func:`codec.pipeline.folder.input_jobs` for where their outputs go)."""
    what = "a folder" if len(args.inputs) == 1 else "several inputs"
    if args.output == "-":
        raise UsageError(f"{what} cannot be written to stdout (give an output folder)")
    if args.output == "":
        raise UsageError("empty output name: give a folder after -o")
    dst = Path(args.output)
    if len(args.inputs) == 1:
        jobs = folder.folder_jobs(Path(args.inputs[0]), dst, suffixes, out_suffix)
    else:
        jobs = folder.input_jobs([Path(p) for p in args.inputs], dst, suffixes, out_suffix)
    near = next((p for p in [dst, *dst.parents] if p.exists()), Path("."))
    if not os.access(near, os.W_OK):
        raise UsageError(f"{near}: output folder is not writable")
    work = make()

    def say(err: BaseException) -> None:
        with tqdm.external_write_mode(file=sys.stderr):
            report(err)

    desc = str(args.inputs[0]) if len(args.inputs) == 1 else f"{len(args.inputs)} inputs"
    with progress_bar(args, total=len(jobs), unit="file", desc=desc) as bar:

        def tick(items: list[folder.FolderJob]) -> Any:
            for item in items:
                yield item
                bar.update(1)

        try:
            result = folder.run_folder(
                jobs, lambda j, replace: work.run(j.source, j.target, replace), args.force,
                args.skip_existing, work.complete, say, tick,
            )  # fmt: skip
        except folder.ExistingOutputsError as err:
            raise UsageError(f"{err}; use --force to replace or --skip-existing") from None
    if result.failed:
        print(
            f"codec: {len(result.failed)} of {result.total} files failed (the others were written)",
            file=sys.stderr,
        )
    return worst_status(err for _, err in result.failed)


def worst_status(errors: Iterable[BaseException]) -> int:
    """0, or the worst failure's exit status (1 internal/I-O beats 2 bad input)."""
    codes = {exit_status(err) for err in errors}
    if not codes:
        return EXIT_OK
    return min(codes) if min(codes) == 1 else EXIT_BAD_INPUT


def run_info(args: argparse.Namespace) -> int:
    from codec.info import describe

    std("stdout")
    if (args.path is None) == (args.model is None):
        raise UsageError("give one thing to describe: a PATH or --model MODEL")
    fields = describe(args.path if args.path is not None else args.model)
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        width = max(len(k) for k in fields)
        for key, value in fields.items():
            print(f"{key:<{width}}  {value}")
    return 0
