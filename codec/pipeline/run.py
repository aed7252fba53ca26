"""The two pipelines, source -> block coder -> sink, and the Python functions built on them.

``encode``: an audio source (:class:`~codec.pipeline.audiofile.AudioFileSource`,
:class:`~codec.pipeline.pcm.PcmSource`) -> :class:`~codec.pipeline.coders.AudioEncoder` -> a
token sink (:class:`~codec.pipeline.tokenio.CodesSink` in memory,
:class:`~codec.pipeline.tokenio.TokenFileSink`, :class:`~codec.pipeline.tokenio.TokenStreamSink`).

``decode``: a :class:`~codec.pipeline.tokenio.TokenSource` (token file, saved stream, pipe)
-> :class:`~codec.pipeline.coders.CodesDecoder` -> an audio sink
(:class:`~codec.pipeline.audiofile.AudioFileSink`, :class:`~codec.pipeline.pcm.PcmSink`,
:class:`MemorySink`).

Both end with the sink's commit, or, on any error or signal, its abort: an output file
exists complete or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from codec.api import Codec
from codec.audio import Audio, AudioError
from codec.pipeline.audiofile import AudioFileSink, AudioFileSource
from codec.pipeline.coders import DEFAULT_BLOCK_SECONDS, AudioEncoder, CodesDecoder, chunk_frames
from codec.pipeline.pcm import PcmSource
from codec.pipeline.tokenio import CodesSink, TokenSource, check_end, check_header, stream_header
from codec.tokenfile.header import StreamEnd
from codec.tokens import Codes

Progress = Callable[[int], None]


class AudioSink(Protocol):
    """Where decoded audio ``[C, n]`` goes."""

    def write(self, wav: torch.Tensor) -> None: ...
    def commit(self) -> Any: ...
    def abort(self) -> None: ...


class TokenSink(Protocol):
    """Where codes ``[C, K, f]`` go."""

    def start(self, header: Any) -> None: ...
    def write(self, codes: torch.Tensor) -> None: ...
    def commit(self, end: StreamEnd) -> Any: ...
    def abort(self) -> None: ...


def encode(
    codec: Codec,
    source: AudioFileSource | PcmSource,
    sink: TokenSink,
    num_codebooks: int | None = None,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    progress: Progress | None = None,
) -> Any:
    """Code an audio source into a token sink; returns what the sink's commit returns.

    A file source is coded in chunks of whole multiples of 16 frames (codes equal to
    ``codec.encode`` of the whole input); a PCM source feeds each frame as soon as it is
    complete (lowest latency on a live pipe), at most ``block_seconds`` per model call.
    ``progress`` is called with the input samples of each block.
    """
    k = _num_codebooks(codec, num_codebooks)
    step = chunk_frames(codec, block_seconds)
    live = isinstance(source, PcmSource)
    enc = AudioEncoder(codec, source.channels, source.sample_rate, k, None if live else step, max_frames=step)
    try:
        sink.start(stream_header(codec, source.channels, k, source.sample_rate))
        for codes in enc.run(_counted(source.blocks(), progress)):
            sink.write(codes)
        return sink.commit(StreamEnd(enc.num_samples, enc.original_num_samples))
    except BaseException:
        sink.abort()
        raise


def decode(
    codec: Codec,
    source: TokenSource,
    sink: AudioSink,
    sample_rate: int | None = None,
    progress: Progress | None = None,
) -> Any:
    """Decode a token source into an audio sink; returns what the sink's commit returns.

    Output is at ``sample_rate`` (default: the original rate in the header), trimmed to the
    original length at the original rate.  ``progress`` is called with the frames of each chunk.
    """
    header, name = source.header, source.name
    try:
        check_header(codec, header, name)
        out_sr = header.original_sample_rate if sample_rate is None else sample_rate
        if isinstance(out_sr, bool) or not isinstance(out_sr, int) or out_sr < 1:
            raise AudioError(f"sample_rate must be a positive integer, got {out_sr!r}")
        dec = CodesDecoder(codec, header.channels, out_sr, name)
        for codes in _counted(source.chunks(), progress):
            wav = dec.push(codes)
            if wav.shape[-1]:
                sink.write(wav)
        end = check_end(header, source.end(), name)
        want = end.original_num_samples if out_sr == header.original_sample_rate else None
        sink.write(dec.finish(end.num_samples, want))
        return sink.commit()
    except BaseException:
        sink.abort()
        raise


# -- the Python functions -------------------------------------------------------------------


def encode_file(
    codec: Codec,
    path: str | Path,
    num_codebooks: int | None = None,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    progress: Progress | None = None,
) -> Codes:
    """Encode an audio file in bounded memory.

    Args:
        codec: the model.
        path: any file soundfile reads (WAV, FLAC, OGG, ...), any rate, C channels.
        num_codebooks: K (default: all).
        block_seconds: audio read per step.
        progress: called with the number of input samples read after each block.
    Returns: :class:`Codes` of one item, ``codes [C, K, F]``, equal to ``codec.encode`` of
    the whole file (a non-causal model is run on the whole file).
    """
    return encode(
        codec, AudioFileSource(path, block_seconds), CodesSink(), num_codebooks, block_seconds, progress
    )


@dataclass(frozen=True)
class DecodedFile:
    """What :func:`decode_to_file` wrote: ``num_samples`` per channel at ``sample_rate``."""

    path: Path
    sample_rate: int
    channels: int
    num_samples: int


def decode_to_file(
    codec: Codec,
    token_path: str | Path,
    output: str | Path,
    sample_rate: int | None = None,
    progress: Progress | None = None,
    replace: bool = True,
) -> DecodedFile:
    """Decode a token file or saved stream straight to an audio file in bounded memory (atomic).

    Args:
        codec: the model that made the tokens (checked against the file's config hash).
        token_path: a ``.cdc`` file or ``.cdcs`` stream.
        output: WAV/FLAC/OGG by extension.
        sample_rate: output rate (default: the original rate recorded in the file).
        progress: called with the frames decoded per chunk.
        replace: replace an existing output.
    """
    with TokenSource(token_path) as src:
        out_sr = sample_rate or src.header.original_sample_rate
        sink = AudioFileSink(output, out_sr, replace=replace)
        decode(codec, src, sink, out_sr, progress)
        return DecodedFile(Path(output), out_sr, src.header.channels, sink.samples)


def decode_file(
    codec: Codec, token_path: str | Path, output: str | Path | None = None, sample_rate: int | None = None
) -> Audio:
    """Decode a token file at its original rate and channel count (or at ``sample_rate``).

    Args: as :func:`decode_to_file`; ``output`` is optional.
    Returns: :class:`Audio` (``wav [C, T]``, ``sample_rate``), T the original length when at
    the original rate; it unpacks as ``wav, sr``.  For long files prefer
    :func:`decode_to_file`, which does not keep the audio in memory.
    """
    with TokenSource(token_path) as src:
        out_sr = sample_rate or src.header.original_sample_rate
        memory = MemorySink()
        sinks = [memory] if output is None else [memory, AudioFileSink(output, out_sr)]
        decode(codec, src, TeeSink(sinks), out_sr)
        return Audio(memory.wav(src.header.channels), out_sr)


class MemorySink:
    """Keeps the decoded audio in memory."""

    def __init__(self) -> None:
        self.parts: list[torch.Tensor] = []

    def write(self, wav: torch.Tensor) -> None:
        self.parts.append(wav)

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        self.parts = []

    def wav(self, channels: int) -> torch.Tensor:
        return torch.cat(self.parts, dim=-1) if self.parts else torch.zeros(channels, 0)


class TeeSink:
    """Writes to several audio sinks; commits all or aborts all."""

    def __init__(self, sinks: Iterable[AudioSink]) -> None:
        self.sinks = list(sinks)

    def write(self, wav: torch.Tensor) -> None:
        for sink in self.sinks:
            sink.write(wav)

    def commit(self) -> None:
        for sink in self.sinks:
            sink.commit()

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


def _num_codebooks(codec: Codec, num_codebooks: int | None) -> int:
    if num_codebooks is None:
        return codec.total_codebooks
    if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int):
        raise AudioError(f"num_codebooks must be an integer, got {num_codebooks!r}")
    counts = codec.codebook_counts()
    if num_codebooks not in counts:
        valid = f"1..{codec.total_codebooks}" if len(counts) == codec.total_codebooks else str(counts)[1:-1]
        raise AudioError(
            f"num_codebooks {num_codebooks} is out of range: model {codec.name!r} has {valid} codebooks"
        )
    return num_codebooks


def _counted(items: Iterable[torch.Tensor], progress: Progress | None) -> Iterator[torch.Tensor]:
    for item in items:
        yield item
        if progress is not None:
            progress(item.shape[-1])
