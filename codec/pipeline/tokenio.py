"""Tokens in and out: the token file and token stream sources and sinks, and the header checks.

Sources give a header, code chunks ``[C, K, f]`` and, once the chunks are used up, the true
lengths (:class:`~codec.tokenfile.StreamEnd`); sinks take the same three things.  Chunks are
collected into a buffer that grows with what actually arrives, never with what a header says.
:func:`check_header` and :func:`check_end` are the one place where the lengths and the model
a header names are checked against each other and against the loaded model.
"""

from __future__ import annotations

import contextlib
import stat
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import BinaryIO

import torch

from codec.api import Codec
from codec.atomic import Output
from codec.audio import resampled_length
from codec.tokenfile.file import codes_from_header, header_from_codes, read_codes, token_file_bytes
from codec.tokenfile.header import STREAM_MAGIC, FileHeader, StreamEnd, StreamHeader, TokenFileError
from codec.tokenfile.stream import TokenStreamReader, TokenStreamWriter
from codec.tokens import Codes


class TokenSource:
    """Codes to decode, from a token file, a saved token stream, or a pipe.

    Args:
        source: a path, or ``"-"`` for stdin.
        stdin: the stream ``"-"`` reads (default ``sys.stdin.buffer``).
    Attributes: ``name``, ``header``, ``frames`` (``None`` for a stream: not known ahead).
    """

    def __init__(self, source: str | Path, stdin: BinaryIO | None = None) -> None:
        self.name = str(source)
        self._handle: BinaryIO | None = None
        self._end: StreamEnd | None = None
        if str(source) == "-":
            self.name = "<stdin>"
            self._stream(stdin or sys.stdin.buffer, close=False)
        elif _is_stream(Path(source)):
            self._stream(Path(source).open("rb"), close=True)  # noqa: SIM115 (closed by close())
        else:
            codes = read_codes(source)
            self.header: StreamHeader = header_from_codes(codes)
            self.frames: int | None = codes.num_frames
            self._codes = codes.codes
            self._end = StreamEnd(int(codes.lengths[0]), int(codes.original_lengths[0]))

    def _stream(self, handle: BinaryIO, close: bool) -> None:
        try:
            self._reader = TokenStreamReader(handle, self.name)
        except BaseException:
            if close:
                handle.close()
            raise
        self._handle = handle if close else None
        self.header, self.frames, self._codes = self._reader.header, None, None

    def chunks(self, block_frames: int = 512) -> Iterator[torch.Tensor]:
        """Code chunks ``[C, K, f]`` in order."""
        if self._codes is None:
            yield from self._reader.frames()
            self._end = self._reader.end
            return
        for i in range(0, self._codes.shape[-1], block_frames):
            yield self._codes[..., i : i + block_frames]

    def end(self) -> StreamEnd | None:
        """The true lengths, after the chunks (``None``: the stream ended without them)."""
        return self._end

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> TokenSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_stream(path: Path) -> bool:
    """Whether ``path`` holds a token stream (checked by its magic; a FIFO always is one)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        kind = "broken symbolic link" if path.is_symlink() else "no such file"
        raise TokenFileError(f"{path}: {kind}") from None
    except OSError as err:
        raise TokenFileError(f"{path}: cannot read ({err.strerror or err})") from None
    if stat.S_ISFIFO(mode):
        return True
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise TokenFileError(f"{path}: {what}, not a token file")
    with contextlib.suppress(OSError), path.open("rb") as f:
        return f.read(len(STREAM_MAGIC)) == STREAM_MAGIC
    return False


class ModelMismatchError(TokenFileError):
    """Tokens made by other weights than the loaded model's."""


def check_header(codec: Codec, header: StreamHeader, name: object) -> None:
    """Refuse codes made by other weights (:class:`ModelMismatchError`), or that do not fit this model."""
    problem = codec.identity.mismatch(header.model, header.fingerprint, header.config_hash)
    if problem:
        raise ModelMismatchError(f"{name}: {problem}")
    mismatch = [
        f"{key} {getattr(header, key)} (model: {want})"
        for key, want in (
            ("sample_rate", codec.sample_rate),
            ("hop_length", codec.hop_length),
            ("codebook_size", codec.codebook_size),
        )
        if getattr(header, key) != want
    ]
    if header.num_codebooks > codec.total_codebooks:
        mismatch.append(f"num_codebooks {header.num_codebooks} (model: at most {codec.total_codebooks})")
    if mismatch:
        raise TokenFileError(f"{name}: header does not fit model {codec.name!r}: {', '.join(mismatch)}")


def check_end(header: StreamHeader, end: StreamEnd | None, name: object) -> StreamEnd:
    """The end lengths, checked for consistency with each other and the header."""
    if end is None:
        raise TokenFileError(f"{name}: token stream ended without its end packet")
    if end.num_samples < 1:
        raise TokenFileError(f"{name}: no audio (the token stream holds zero samples)")
    back = resampled_length(end.original_num_samples, header.original_sample_rate, header.sample_rate)
    if back != end.num_samples:
        raise TokenFileError(
            f"{name}: inconsistent lengths: {end.original_num_samples} samples at "
            f"{header.original_sample_rate} Hz are not {end.num_samples} samples at {header.sample_rate} Hz"
        )
    return end


def file_header(header: StreamHeader, end: StreamEnd, frames: int) -> FileHeader:
    """The token-file header of a stream header plus its end lengths."""
    base = {f.name: getattr(header, f.name) for f in fields(StreamHeader)}
    return FileHeader(
        **base, num_frames=frames, num_samples=end.num_samples, original_num_samples=end.original_num_samples
    )


class CodesBuffer:
    """Code chunks ``[C, K, f]`` gathered into one tensor that grows (by doubling) as they come.

    One growing tensor rather than hundreds of small chunks, which would fragment the heap
    and let the peak memory creep up with the input's length.
    """

    def __init__(self) -> None:
        self._data: torch.Tensor | None = None
        self.frames = 0

    def append(self, codes: torch.Tensor) -> None:
        n = codes.shape[-1]
        if self._data is None:
            self._data = torch.empty(*codes.shape[:-1], max(n, 1024), dtype=torch.long)
        elif self.frames + n > self._data.shape[-1]:
            size = max(2 * self._data.shape[-1], self.frames + n)
            bigger = torch.empty(*self._data.shape[:-1], size, dtype=torch.long)
            bigger[..., : self.frames] = self._data[..., : self.frames]
            self._data = bigger
        self._data[..., self.frames : self.frames + n] = codes
        self.frames += n

    def codes(self, channels: int, num_codebooks: int) -> torch.Tensor:
        if self._data is None:
            return torch.zeros(channels, num_codebooks, 0, dtype=torch.long)
        return self._data[..., : self.frames].clone()


class CodesSink:
    """Collects the codes in memory; :meth:`commit` returns them as :class:`Codes`."""

    def __init__(self) -> None:
        self.buffer = CodesBuffer()
        self.header: StreamHeader | None = None

    def start(self, header: StreamHeader) -> None:
        self.header = header

    def write(self, codes: torch.Tensor) -> None:
        self.buffer.append(codes)

    def commit(self, end: StreamEnd) -> Codes:
        h = file_header(self.header, end, self.buffer.frames)
        return codes_from_header(h, self.buffer.codes(h.channels, h.num_codebooks))

    def abort(self) -> None:
        self.buffer = CodesBuffer()


class TokenFileSink(CodesSink):
    """Writes a token file when the input ends; the output is locked from the start, so a
    second writer is refused at once (see :class:`codec.atomic.Output`)."""

    def __init__(self, path: str | Path, replace: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self._output = Output(path, replace=replace)

    def start(self, header: StreamHeader) -> None:
        super().start(header)
        self._output.open()

    def commit(self, end: StreamEnd) -> Codes:
        codes = super().commit(end)
        self._output.tmp.write_bytes(token_file_bytes(codes))
        self._output.commit()
        return codes

    def abort(self) -> None:
        super().abort()
        self._output.abort()


class TokenStreamSink:
    """Writes a token stream packet by packet: to a pipe, or to a file (atomically).

    Args:
        out: a binary stream (``sys.stdout.buffer``) or a path.
        replace: for a path, replace an existing file.
    """

    def __init__(self, out: BinaryIO | str | Path, replace: bool = True) -> None:
        self._output = Output(out, replace=replace) if isinstance(out, (str, Path)) else None
        self._out = None if self._output is not None else out
        self._writer: TokenStreamWriter | None = None
        self.header: StreamHeader | None = None

    def start(self, header: StreamHeader) -> None:
        self.header = header
        if self._output is not None:
            self._out = self._output.open().open("wb")
        self._writer = TokenStreamWriter(self._out, header)

    def write(self, codes: torch.Tensor) -> None:
        self._writer.write(codes)

    def commit(self, end: StreamEnd) -> None:
        self._writer.close(end.num_samples, end.original_num_samples)
        if self._output is not None:
            self._out.close()
            self._output.commit()

    def abort(self) -> None:
        if self._output is not None:
            if self._out is not None:
                with contextlib.suppress(OSError):
                    self._out.close()
            self._output.abort()


def stream_header(codec: Codec, channels: int, num_codebooks: int, original_sample_rate: int) -> StreamHeader:
    """The header of codes this model makes from ``channels`` channels at ``original_sample_rate``."""
    return StreamHeader(
        codec.name, codec.fingerprint, codec.sample_rate, codec.hop_length, channels,
        num_codebooks, codec.codebook_size, original_sample_rate,
    )  # fmt: skip


def token_file_summary(path: Path) -> tuple[StreamHeader, StreamEnd] | None:
    """The header and true lengths of ``path`` if it is a complete, valid token file or stream.

    Every chunk is read and checked (a token file's CRC32, a stream's packets and its end
    packet, the lengths against each other); ``None`` for anything damaged, cut short or not
    a token file.  This is what ``--skip-existing`` trusts.
    """
    try:
        with TokenSource(path) as src:
            for _ in src.chunks():
                pass
            return src.header, check_end(src.header, src.end(), src.name)
    except (TokenFileError, OSError):
        return None
