"""The ``codec`` command line: encode, decode, info (and train/export/demo when installed).

A thin layer over :mod:`codec.files` and :mod:`codec.fileformat`.  Every problem with the
user's input is one line on stderr (``codec: error: <file>: <problem>``) and exit status 2;
an unexpected failure is exit status 1 (``--debug`` shows its traceback); 130 after Ctrl-C
and 141 when the reader of stdout goes away (as a SIGPIPE death).  Outputs are written
atomically, so a failed run leaves no partial file; existing outputs are never replaced
without ``--force``.

``-`` as input or output means a pipe: ``codec encode - -o -`` reads raw PCM on stdin and
writes a token stream on stdout, ``codec decode - -o -`` the reverse (see the README section
"Streaming from the shell" and :mod:`codec.fileformat` for the stream format).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import torch
from tqdm import tqdm

from codec import pretrained
from codec.api import Codec
from codec.audio import AudioError, audio_info
from codec.blockio import AudioFileWriter, read_pcm, to_pcm
from codec.checkpoint import CheckpointError
from codec.config import ConfigError
from codec.fileformat import (
    EXTENSION,
    STREAM_EXTENSION,
    STREAM_MAGIC,
    StreamEnd,
    StreamHeader,
    TokenFileError,
    TokenStreamReader,
    TokenStreamWriter,
    header_from_codes,
    read_codes,
    write_codes,
)
from codec.files import (
    AudioEncoder,
    check_header,
    check_wav_complete,
    chunk_frames,
    decode_codes,
    encode_file,
    make_codes,
    read_blocks,
)
from codec.info import DescribeError, describe
from codec.pretrained import NoBundledModelError
from codec.streaming import StreamingError


class CliError(Exception):
    """Bad input or usage: printed as one line, exit status 2."""


# Errors that mean "the user's input is wrong" (exit 2), never "the library is broken" (exit 1).
BAD_INPUT: tuple[type[BaseException], ...] = (
    CliError,
    DescribeError,
    AudioError,
    TokenFileError,
    CheckpointError,
    ConfigError,
    NoBundledModelError,
    StreamingError,
    OSError,
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (like every other bad input), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``codec`` argument parser with every available subcommand."""
    parser = _Parser(prog="codec", description="Neural audio codec: audio <-> tokens.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_coding_parsers(sub, common)
    info = sub.add_parser("info", parents=[common], help="describe a model, token file or audio file")
    info.add_argument("path", help="model directory, bundled model name, token file or audio file")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=run_info)
    _add_optional(sub, "codec.train.cli", [("train", "add_train_parser", "run_train"),
                                           ("export", "add_export_parser", "run_export")])  # fmt: skip
    _add_optional(sub, "codec.demo", [("demo", "add_demo_parser", "run_demo")])
    return parser


def _add_coding_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    coding = argparse.ArgumentParser(add_help=False, parents=[common])
    coding.add_argument("input", metavar="IN", help="a file, a folder (coded recursively) or - for stdin")
    coding.add_argument("-o", "--output", metavar="OUT", required=True, help="file, folder or - for stdout")
    coding.add_argument(
        "--model", help="bundled model name or model directory (default: the bundled default)"
    )
    coding.add_argument("--force", action="store_true", help="replace existing outputs")
    coding.add_argument("--skip-existing", action="store_true", help="folder mode: leave existing outputs")
    coding.add_argument("--pcm-format", choices=["s16le", "f32le"], default="s16le", help="raw PCM on pipes")
    enc = sub.add_parser("encode", parents=[coding], help="audio -> token file (.cdc) or token stream")
    enc.add_argument(
        "--num-codebooks", type=int, help="codebooks to keep (default: all; fewer = lower bitrate)"
    )
    enc.add_argument(
        "--sample-rate", type=_positive_int, help="rate of raw PCM on stdin (default: model rate)"
    )
    enc.add_argument("--channels", type=_positive_int, help="channels of raw PCM on stdin (default: 1)")
    enc.add_argument("--block-seconds", type=_positive_float, default=10.0, help="audio read per step")
    enc.set_defaults(run=run_encode)
    dec = sub.add_parser("decode", parents=[coding], help="token file or stream -> audio (.wav/.flac/.ogg)")
    dec.add_argument("--sample-rate", type=_positive_int, help="output rate (default: the original rate)")
    dec.add_argument(
        "--format", choices=["wav", "flac", "ogg"], default="wav", help="folder mode output format"
    )
    dec.set_defaults(run=run_decode)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_optional(sub: argparse._SubParsersAction, module: str, commands: list[tuple[str, str, str]]) -> None:
    """Wire subcommands another module defines; if it is missing, a stub explains why."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        if isinstance(err, ModuleNotFoundError) and err.name == module:
            return  # not part of this installation: no subcommand
        reason = f"{err}"
        for name, _, _ in commands:
            stub = sub.add_parser(name, help=f"(unavailable: {reason})", add_help=False)
            stub.add_argument("rest", nargs=argparse.REMAINDER)
            stub.set_defaults(run=_unavailable(name, reason), quiet=True, debug=False)
        return
    for name, add, run in commands:
        getattr(mod, add)(sub)
        sub.choices[name].set_defaults(run=getattr(mod, run))


def _unavailable(name: str, reason: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise CliError(f"'codec {name}' is not available in this installation ({reason})")

    return run


# -- shared helpers --------------------------------------------------------------------------

# Inputs coded in folder mode (what libsndfile reads; raw headerless files are left out).
AUDIO_SUFFIXES = {
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".aifc",
    ".au",
    ".w64",
    ".caf",
}
TOKEN_SUFFIXES = {EXTENSION, STREAM_EXTENSION}


def load_codec(model: str | None) -> Codec:
    """The model named by ``--model`` (a bundled name or a directory; default: the bundled default)."""
    try:
        return Codec.from_pretrained(model)
    except NoBundledModelError as err:
        raise CliError(str(err) if model is None else f"--model {model}: {err}") from None
    except FileNotFoundError:
        raise CliError(f"--model {model}: no such model directory or bundled model") from None


def _model_for(
    args: argparse.Namespace, header: StreamHeader, name: object, cache: dict[str, Codec]
) -> Codec:
    """``--model`` if given, else the bundled model the tokens name; checked against the header."""
    key = args.model or f"bundled:{header.model}"
    if key not in cache:
        if args.model:
            cache[key] = load_codec(args.model)
        else:
            try:
                cache[key] = Codec.from_pretrained(pretrained.model_dir(header.model))
            except NoBundledModelError:
                have = ", ".join(pretrained.available()) or "no bundled model exists yet"
                raise CliError(
                    f"{name}: made by model {header.model!r}, which this installation does not bundle "
                    f"({have}); pass --model DIR"
                ) from None
    check_header(cache[key], header, name)
    return cache[key]


def _check_output(target: Path, force: bool, source: str) -> None:
    """Refuse to replace an existing output without --force; make sure its folder exists."""
    if source != "-" and target.resolve() == Path(source).resolve():
        raise CliError(f"{target}: output would replace the input")
    if target.is_dir():
        raise CliError(f"{target}: is a directory (give a file name)")
    if target.exists() and not force:
        raise CliError(f"{target}: already exists (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(target.parent, os.W_OK):
        raise CliError(f"{target.parent}: output folder is not writable")


def _target(source: str, output: str, suffix: str) -> Path:
    """The output file: ``output`` itself, or ``source``'s name with ``suffix`` inside a folder."""
    out = Path(output)
    if output.endswith(("/", os.sep)) or out.is_dir():
        return out / (Path(source).stem + suffix if source != "-" else "stdin" + suffix)
    return out


def _bar(args: argparse.Namespace, **kwargs: Any) -> tqdm:
    # disable=None: shown on a terminal only, so pipes and logs stay clean.
    return tqdm(disable=True if args.quiet else None, file=sys.stderr, dynamic_ncols=True, **kwargs)


# -- encode ----------------------------------------------------------------------------------


def _check_stdout(output: str) -> None:
    if output == "-" and sys.stdout.isatty():
        raise CliError("refusing to write binary data to a terminal: pipe or redirect stdout")


def run_encode(args: argparse.Namespace) -> int:
    _check_stdout(args.output)
    if args.input != "-" and (args.sample_rate or args.channels):
        raise CliError(
            "--sample-rate and --channels describe raw PCM on stdin (IN = -); files carry their own"
        )
    if args.input != "-" and Path(args.input).is_dir():
        return _run_folder(args, AUDIO_SUFFIXES, EXTENSION, _encode_job(args))
    if args.input != "-":
        audio_info(args.input)  # fail on a missing or non-audio input before loading the model
    target = None if args.output == "-" else _target(args.input, args.output, EXTENSION)
    if target is not None:
        _check_token_target(target)
        _check_output(target, args.force, args.input)
    _encode_job(args)(args.input, target)
    return 0


def _check_token_target(target: Path) -> None:
    if target.suffix.lower() in AUDIO_SUFFIXES:
        raise CliError(f"{target}: encode writes tokens, not audio (name the output *{EXTENSION})")


def _encode_job(args: argparse.Namespace) -> Callable[[str | Path, Path | None], None]:
    """``job(input, target)``: encode a file or stdin (``-``) to a token file or stdout (``None``)."""
    codec = load_codec(args.model)
    k = args.num_codebooks
    if k is not None and not 1 <= k <= codec.total_codebooks:
        raise CliError(
            f"--num-codebooks {k} is out of range: model {codec.name!r} has "
            f"1..{codec.total_codebooks} codebooks"
        )

    def job(source: str | Path, target: Path | None) -> None:
        if target is not None and source != "-":
            info = audio_info(source)
            with _bar(args, total=round(info.duration, 1), unit="s", leave=False) as bar:
                progress = lambda n: bar.update(n / info.sample_rate)  # noqa: E731
                codes = encode_file(codec, source, k, args.block_seconds, progress)
            write_codes(target, codes)
            return
        _encode_stream(args, codec, k, str(source), target)

    return job


def _encode_stream(
    args: argparse.Namespace, codec: Codec, k: int | None, source: str, target: Path | None
) -> None:
    """Encode with packets going out as they are made (stdin and/or stdout)."""
    info = None if source == "-" else audio_info(source)
    if source == "-":
        name, channels = "<stdin>", args.channels or 1
        sample_rate, frames = args.sample_rate or codec.sample_rate, None
        blocks = read_pcm(sys.stdin.buffer, channels, args.pcm_format)
    else:
        name = source
        check_wav_complete(Path(source))
        channels, sample_rate = info.channels, info.sample_rate
        frames = chunk_frames(codec, args.block_seconds)
        blocks = read_blocks(Path(source), sample_rate, args.block_seconds)
    enc = AudioEncoder(codec, channels, sample_rate, k, frames)
    writer: TokenStreamWriter | None = None
    parts = []
    try:
        for codes in enc.run(blocks):
            if target is not None:
                parts.append(codes)
                continue
            if writer is None:
                writer = TokenStreamWriter(sys.stdout.buffer, _stream_header(codec, enc))
            writer.write(codes)
    except AudioError as err:
        raise AudioError(str(err) if str(err).startswith(name) else f"{name}: {err}") from None
    if enc.original_num_samples == 0:
        raise AudioError(f"{name}: empty input (zero samples)")
    if source != "-" and enc.original_num_samples != info.num_samples:
        raise AudioError(
            f"{name}: truncated (header says {info.num_samples} samples, read {enc.original_num_samples})"
        )
    if writer is not None:
        writer.close(enc.num_samples, enc.original_num_samples)
    if target is not None:
        write_codes(target, make_codes(codec, torch.cat(parts, dim=-1), enc))


def _stream_header(codec: Codec, enc: AudioEncoder) -> StreamHeader:
    return StreamHeader(
        codec.name, codec.fingerprint, codec.sample_rate, codec.hop_length, enc.channels,
        enc.num_codebooks, codec.codebook_size, enc.sample_rate,
    )  # fmt: skip


# -- decode ----------------------------------------------------------------------------------


def run_decode(args: argparse.Namespace) -> int:
    _check_stdout(args.output)
    if args.input != "-" and Path(args.input).is_dir():
        return _run_folder(args, TOKEN_SUFFIXES, "." + args.format, _decode_job(args))
    target = None if args.output == "-" else _target(args.input, args.output, "." + args.format)
    if target is not None:
        AudioFileWriter(target)  # refuses an unsupported extension before any work
        _check_output(target, args.force, args.input)
    _decode_job(args)(args.input, target)
    return 0


def _decode_job(args: argparse.Namespace) -> Callable[[str | Path, Path | None], None]:
    """``job(input, target)``: decode a token file/stream (``-``: stdin) to audio (``None``: stdout)."""
    cache: dict[str, Codec] = {}

    def job(source: str | Path, target: Path | None) -> None:
        with _token_source(str(source)) as src:
            codec = _model_for(args, src.header, src.name, cache)
            out_sr = args.sample_rate or src.header.original_sample_rate
            if target is None:
                sink = _pcm_sink(args.pcm_format)
                decode_codes(codec, src.header, src.chunks, src.end, sink, out_sr)
                return
            writer = AudioFileWriter(target, out_sr)
            bar = _bar(args, total=src.frames, unit="frame", leave=False)
            try:
                with bar:
                    chunks = (bar.update(c.shape[-1]) or c for c in src.chunks)
                    decode_codes(codec, src.header, chunks, src.end, writer.write, out_sr)
                writer.commit()
            except BaseException:
                writer.abort()
                raise

    return job


@dataclass
class _TokenSource:
    """Codes to decode, from a token file or a token stream (file or stdin)."""

    name: str
    header: StreamHeader
    chunks: Iterator[torch.Tensor]
    end: Callable[[], StreamEnd | None]
    frames: int | None
    handle: BinaryIO | None = None

    def __enter__(self) -> _TokenSource:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None and self.handle is not sys.stdin.buffer:
            self.handle.close()


def _token_source(source: str) -> _TokenSource:
    if source == "-":
        reader = TokenStreamReader(sys.stdin.buffer, "<stdin>")
        return _TokenSource(
            "<stdin>", reader.header, reader.frames(), lambda: reader.end, None, sys.stdin.buffer
        )
    path = Path(source)
    if path.is_file():
        handle = path.open("rb")
        if handle.read(len(STREAM_MAGIC)) == STREAM_MAGIC:  # a token stream saved to a file
            handle.seek(0)
            try:
                reader = TokenStreamReader(handle, source)
            except BaseException:
                handle.close()
                raise
            return _TokenSource(source, reader.header, reader.frames(), lambda: reader.end, None, handle)
        handle.close()
    codes = read_codes(path)
    end = StreamEnd(int(codes.lengths[0]), int(codes.original_lengths[0]))
    chunks = (codes.codes[..., i : i + 512] for i in range(0, codes.num_frames, 512))
    return _TokenSource(source, header_from_codes(codes), chunks, lambda: end, codes.num_frames)


def _pcm_sink(pcm_format: str) -> Callable[[torch.Tensor], None]:
    out = sys.stdout.buffer

    def sink(wav: torch.Tensor) -> None:
        out.write(to_pcm(wav, pcm_format))
        out.flush()  # each packet reaches the player as soon as it is decoded

    return sink


# -- folders ---------------------------------------------------------------------------------


def _run_folder(
    args: argparse.Namespace, suffixes: set[str], out_suffix: str, job: Callable[[Path, Path | None], None]
) -> int:
    """Code every matching file under IN into the mirrored tree under OUT."""
    src, dst = Path(args.input), Path(args.output)
    if args.output == "-":
        raise CliError(f"{src}: a folder cannot be written to stdout (give an output folder)")
    if dst.exists() and not dst.is_dir():
        raise CliError(f"{dst}: not a folder (a folder input needs an output folder)")
    inputs = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not inputs:
        raise CliError(f"{src}: no input files found (looked for {', '.join(sorted(suffixes))})")
    jobs = [(p, dst / p.relative_to(src).with_suffix(out_suffix)) for p in inputs]
    _check_folder_outputs(args, jobs)
    jobs = [(p, o) for p, o in jobs if not (args.skip_existing and o.exists())]
    failed = 0
    for path, out in _bar(args, iterable=jobs, unit="file", desc=str(src)):
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            job(path, out)
        except BAD_INPUT as err:
            failed += 1
            with tqdm.external_write_mode(file=sys.stderr):
                _print_error(err)
    if failed:
        print(f"codec: {failed} of {len(jobs)} files failed (the others were written)", file=sys.stderr)
        return 2
    return 0


def _check_folder_outputs(args: argparse.Namespace, jobs: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for path, out in jobs:
        if out in seen:
            raise CliError(f"{path}: same output {out} as {seen[out]} (rename one of them)")
        seen[out] = path
    existing = [out for _, out in jobs if out.exists()]
    if existing and not (args.force or args.skip_existing):
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CliError(f"{existing[0]}: already exists{more}; use --force to replace or --skip-existing")
    dst = Path(args.output)
    dst.mkdir(parents=True, exist_ok=True)
    if not os.access(dst, os.W_OK):
        raise CliError(f"{dst}: output folder is not writable")


# -- info ------------------------------------------------------------------------------------


def run_info(args: argparse.Namespace) -> int:
    fields = describe(args.path)
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        width = max(len(k) for k in fields)
        for key, value in fields.items():
            print(f"{key:<{width}}  {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line. Returns the exit status: 0 ok, 2 bad input or usage, 1 internal error."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage and the problem
        return int(exc.code or 0)
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `| head`): stop quietly, with the status a
        # SIGPIPE death would give, and keep the interpreter from flushing into the dead pipe.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except BAD_INPUT as err:
        _print_error(err)
        return 2
    except KeyboardInterrupt:
        print("codec: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if getattr(args, "debug", False):
            raise
        _print_error(err, internal=True)
        return 1


def _print_error(err: BaseException, internal: bool = False) -> None:
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    else:
        text = str(err) or type(err).__name__
    text = " ".join(text.split())  # one line, whatever the message held
    if internal:
        text = f"internal error: {type(err).__name__}: {text} (run with --debug for the traceback)"
    else:
        text = f"error: {text}"
    with contextlib.suppress(OSError, ValueError):  # stderr itself may be gone
        print(f"codec: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
