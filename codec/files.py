"""File-level encode/decode in bounded memory, through the streaming path.

A causal model codes a file block by block: audio is read ``block_seconds`` at a time,
resampled to the model rate without seams (:class:`BlockResampler`), fed to a
:class:`~codec.streaming.Stream` in chunks of whole multiples of 16 frames (the chunk size at
which streaming is bit-exact with offline encoding), and the codes equal those of
``Codec.encode`` on the whole file.  Decoding streams the codes back, drops the decoder's
pre-roll, restores the original rate, trims the padding and writes the audio progressively to
a temporary file that is renamed on success.  Memory stays bounded by the block size plus the
codes (about 20 MB per hour at 12 codebooks).  A non-causal model cannot stream, so it falls
back to whole-file processing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from codec.api import Codec
from codec.audio import (
    Audio,
    AudioError,
    audio_info,
    check_wav_complete,
    iter_audio_blocks,
    resample,
    resampled_length,
)
from codec.blockio import AudioFileWriter, BlockResampler
from codec.fileformat import (
    StreamEnd,
    StreamHeader,
    TokenFileError,
    header_from_codes,
    read_codes,
)
from codec.tokens import Codes

DEFAULT_BLOCK_SECONDS = 10.0
# Streaming encode equals offline encode bit for bit when every call sees >= 16 frames
# (the matrix products then take the same kernel path as one long call); see codec.api.
_EXACT_FRAMES = 16


class AudioEncoder:
    """Streams audio blocks ``[C, n]`` at any rate to codes ``[C, K, f]``.

    A non-causal model cannot stream: it keeps the blocks and encodes them whole in
    :meth:`finish` (memory then grows with the input).

    Args:
        codec: the model.
        channels: C, channels of the input (each coded separately).
        sample_rate: rate of the input; resampled to the model rate without seams.
        num_codebooks: K (default: all).
        chunk_frames: feed the model in chunks of this many frames (a multiple of 16 makes the
            codes bit-exact with offline encoding); ``None`` feeds every whole frame at once
            (lowest latency, for live pipes).
    """

    def __init__(
        self,
        codec: Codec,
        channels: int,
        sample_rate: int,
        num_codebooks: int | None = None,
        chunk_frames: int | None = None,
    ) -> None:
        self.codec, self.channels, self.sample_rate = codec, channels, sample_rate
        self.num_codebooks = num_codebooks or codec.total_codebooks
        if not 1 <= self.num_codebooks <= codec.total_codebooks:
            raise ValueError(f"num_codebooks must be in 1..{codec.total_codebooks}, got {num_codebooks}")
        self.stream = codec.stream(1, channels, self.num_codebooks) if codec.causal else None
        self.resampler = None
        if sample_rate != codec.sample_rate and codec.causal:
            self.resampler = BlockResampler(sample_rate, codec.sample_rate, channels)
        self._step = codec.hop_length * (chunk_frames or 1)
        self._pending = torch.zeros(channels, 0)
        self._blocks: list[torch.Tensor] = []  # non-causal models only
        self.num_samples = 0  # at the model rate
        self.original_num_samples = 0

    def push(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: wav ``[C, n]`` float. Returns the codes ``[C, K, f]`` of the frames completed."""
        if wav.dim() != 2 or wav.shape[0] != self.channels:
            raise AudioError(f"expected audio blocks [C={self.channels}, n], got {tuple(wav.shape)}")
        if not torch.isfinite(wav).all():
            raise AudioError("audio contains NaN or Inf samples")
        self.original_num_samples += wav.shape[-1]
        wav = wav.float()
        if self.stream is None:
            self._blocks.append(wav)
            return self._cat([])
        return self._feed(self.resampler.push(wav) if self.resampler else wav)

    def finish(self) -> torch.Tensor:
        """End of input: codes ``[C, K, f]`` of the rest, the last frame zero-padded."""
        if self.stream is None:
            return self._finish_offline()
        parts = [self._feed(self.resampler.finish())] if self.resampler else []
        rest = self._pending.shape[-1]
        if rest:
            frames = -(-rest // self.codec.hop_length)
            # Pad to >= 16 frames as offline encoding does (past the end, so no code changes).
            padded = max(frames, _EXACT_FRAMES) * self.codec.hop_length
            x = torch.nn.functional.pad(self._pending, (0, padded - rest))
            parts.append(self.stream.encode(x[None])[..., :frames])
            self._pending = self._pending[:, :0]
        return self._cat(parts)

    def run(self, blocks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Push every block, then finish; yields non-empty code chunks ``[C, K, f]``."""
        for block in blocks:
            codes = self.push(block)
            if codes.shape[-1]:
                yield codes
        codes = self.finish()
        if codes.shape[-1]:
            yield codes

    def _feed(self, wav: torch.Tensor) -> torch.Tensor:
        self.num_samples += wav.shape[-1]
        self._pending = torch.cat([self._pending, wav], dim=-1)
        usable = (self._pending.shape[-1] // self._step) * self._step
        if usable == 0 or self.stream is None:
            return self._cat([])
        codes = self.stream.encode(self._pending[None, :, :usable])
        self._pending = self._pending[:, usable:]
        return codes

    def _finish_offline(self) -> torch.Tensor:
        if not self._blocks:
            return self._cat([])
        wav = torch.cat(self._blocks, dim=-1)
        self._blocks = []
        codes = self.codec.encode(wav[None], self.sample_rate, num_codebooks=self.num_codebooks)
        self.num_samples = int(codes.lengths[0])
        return codes.codes

    def _cat(self, parts: list[torch.Tensor]) -> torch.Tensor:
        if not parts:
            return torch.zeros(self.channels, self.num_codebooks, 0, dtype=torch.long)
        return torch.cat(parts, dim=-1)


class CodesDecoder:
    """Streams codes ``[C, K, f]`` to audio ``[C, n]`` at ``sample_rate``.

    The decoder's pre-roll is dropped, so the output starts at time zero; output is released
    as soon as it is final, and :meth:`finish` trims it to the true length.  A non-causal
    model keeps the codes and decodes them whole in :meth:`finish`.

    Args:
        codec: the model.
        channels: C.
        sample_rate: output rate (default: the model's); resampled without seams.
    """

    def __init__(self, codec: Codec, channels: int, sample_rate: int | None = None) -> None:
        self.codec, self.channels = codec, channels
        self.sample_rate = sample_rate or codec.sample_rate
        self.stream = codec.stream(1, channels) if codec.causal else None
        self.resampler = None
        if self.sample_rate != codec.sample_rate and codec.causal:
            self.resampler = BlockResampler(codec.sample_rate, self.sample_rate, channels)
        self._skip = codec.lookahead
        # The last frame is padding past the true end; hold back what could be padding until
        # the length is known (nothing when the lookahead already covers a frame).
        self._hold = max(0, codec.hop_length - codec.lookahead)
        self._held = torch.zeros(channels, 0)
        self._codes: list[torch.Tensor] = []  # non-causal models only
        self.frames = 0
        self._released = 0  # model-rate samples passed on
        self._out = 0  # samples returned at the output rate

    def push(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[C, K, f]``. Returns ``[C, n]`` float32 at the output rate."""
        self.frames += codes.shape[-1]
        if self.stream is None:
            self._codes.append(codes)
            return self._held[:, :0]
        return self._take(self.stream.decode(codes)[0].float(), self._hold)

    def finish(self, num_samples: int, out_num_samples: int | None = None) -> torch.Tensor:
        """End of codes. Returns the rest of the audio ``[C, n]``.

        Args:
            num_samples: the true length at the model rate.
            out_num_samples: the length wanted at the output rate (default: ``num_samples``
                resampled; pass the original length when decoding to the original rate).
        """
        hop = self.codec.hop_length
        if not (self.frames - 1) * hop < num_samples <= self.frames * hop:
            raise TokenFileError(f"length {num_samples} does not fit {self.frames} frames of {hop} samples")
        if out_num_samples is None:
            out_num_samples = int(resampled_length(num_samples, self.codec.sample_rate, self.sample_rate))
        if self.stream is None:
            return self._finish_offline(num_samples, out_num_samples)
        before = self._out
        parts = [self._take(self.stream.flush().wav[0].float(), 0, limit=num_samples)]
        if self.resampler:
            parts.append(self.resampler.finish())
        out = torch.cat(parts, dim=-1)
        keep = out_num_samples - before
        if not 0 <= keep <= out.shape[-1]:
            raise RuntimeError(f"decoder produced {before + out.shape[-1]} samples, {out_num_samples} wanted")
        self._out = out_num_samples
        return out[:, :keep]

    def _take(self, wav: torch.Tensor, hold: int, limit: int | None = None) -> torch.Tensor:
        skip = min(self._skip, wav.shape[-1])
        self._skip -= skip
        held = torch.cat([self._held, wav[:, skip:]], dim=-1)
        n = max(0, held.shape[-1] - hold)
        if limit is not None:
            n = min(n, limit - self._released)
        ready, self._held = held[:, :n], held[:, n:]
        self._released += n
        out = self.resampler.push(ready) if self.resampler else ready
        self._out += out.shape[-1]
        return out

    def _finish_offline(self, num_samples: int, out_num_samples: int) -> torch.Tensor:
        c = self.codec
        codes = Codes(
            codes=torch.cat(self._codes, dim=-1), lengths=torch.tensor([num_samples]),
            sample_rate=c.sample_rate, hop_length=c.hop_length, codebook_size=c.codebook_size,
            channels=self.channels, model=c.name, fingerprint=c.fingerprint,
        )  # fmt: skip
        wav = resample(c.decode(codes)[0], c.sample_rate, self.sample_rate)
        wav = torch.nn.functional.pad(wav, (0, max(0, out_num_samples - wav.shape[-1])))
        self._codes = []
        return wav[:, :out_num_samples]


def encode_file(
    codec: Codec,
    path: str | Path,
    num_codebooks: int | None = None,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    progress: Callable[[int], None] | None = None,
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
    path = Path(path)
    info = audio_info(path)
    check_wav_complete(path)
    enc = AudioEncoder(
        codec, info.channels, info.sample_rate, num_codebooks, chunk_frames(codec, block_seconds)
    )
    # One tensor sized from the header, filled in place: hundreds of small chunks kept until
    # the end would fragment the heap and let the peak memory creep up with the file length.
    samples = int(resampled_length(info.num_samples, info.sample_rate, codec.sample_rate))
    codes = torch.empty(info.channels, enc.num_codebooks, -(-samples // codec.hop_length), dtype=torch.long)
    filled = 0
    for chunk in enc.run(_counted(read_blocks(path, info.sample_rate, block_seconds), progress)):
        if filled + chunk.shape[-1] > codes.shape[-1]:
            raise AudioError(f"{path}: holds more audio than its header says ({info.num_samples} samples)")
        codes[..., filled : filled + chunk.shape[-1]] = chunk
        filled += chunk.shape[-1]
    if enc.original_num_samples != info.num_samples:
        raise AudioError(
            f"{path}: truncated (header says {info.num_samples} samples, read {enc.original_num_samples})"
        )
    return make_codes(codec, codes, enc)


def chunk_frames(codec: Codec, block_seconds: float) -> int:
    """Frames per model call for ``block_seconds``: a whole multiple of 16 (exact streaming)."""
    if not block_seconds > 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    return _EXACT_FRAMES * max(1, round(block_seconds * codec.frame_rate / _EXACT_FRAMES))


def read_blocks(path: Path, sample_rate: int, block_seconds: float) -> Iterator[torch.Tensor]:
    """Blocks ``[C, n]`` of about ``block_seconds`` from an audio file."""
    return iter_audio_blocks(path, max(1, round(block_seconds * sample_rate)))


@dataclass(frozen=True)
class DecodedFile:
    """What :func:`decode_to_file` wrote: ``num_samples`` per channel at ``sample_rate``."""

    path: Path
    sample_rate: int
    channels: int
    num_samples: int


def decode_file(
    codec: Codec,
    token_path: str | Path,
    output: str | Path | None = None,
    sample_rate: int | None = None,
) -> Audio:
    """Decode a token file at its original rate and channel count (or at ``sample_rate``).

    Args:
        codec: the model that made the tokens (checked against the file's config hash).
        token_path: a ``.cdc`` file.
        output: also write the audio here (WAV/FLAC/OGG by extension), atomically.
        sample_rate: output rate (default: the original rate recorded in the file).
    Returns: :class:`Audio` (``wav [C, T]``, ``sample_rate``), T the original length when at the
    original rate; it unpacks as ``wav, sr``.
    For long files prefer :func:`decode_to_file`, which does not keep the audio in memory.
    """
    codes = read_codes(token_path)
    out_sr = sample_rate or int(codes.original_sample_rate or codes.sample_rate)
    parts: list[torch.Tensor] = []
    writer = None if output is None else AudioFileWriter(output, out_sr)
    try:
        decode_codes_to(codec, codes, _tee(parts, writer), out_sr, name=token_path)
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return Audio(torch.cat(parts, dim=-1), out_sr)


def decode_to_file(
    codec: Codec,
    token_path: str | Path,
    output: str | Path,
    sample_rate: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> DecodedFile:
    """Decode a token file straight to an audio file in bounded memory (atomic write).

    Args: as :func:`decode_file`; progress is called with the frames decoded per block.
    """
    codes = read_codes(token_path)
    out_sr = sample_rate or int(codes.original_sample_rate or codes.sample_rate)
    writer = AudioFileWriter(output, out_sr)
    count = 0

    def sink(wav: torch.Tensor) -> None:
        nonlocal count
        writer.write(wav)
        count += wav.shape[-1]

    try:
        decode_codes_to(codec, codes, sink, out_sr, name=token_path, progress=progress)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return DecodedFile(Path(output), out_sr, codes.channels, count)


def decode_codes_to(
    codec: Codec,
    codes: Codes,
    sink: Callable[[torch.Tensor], None],
    sample_rate: int | None = None,
    name: object = "codes",
    block_frames: int = 512,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Decode one item's :class:`Codes` block by block, passing audio ``[C, n]`` to ``sink``.

    Returns the output rate (default: the original rate).
    """
    header = header_from_codes(codes)
    check_header(codec, header, name)
    end = StreamEnd(header.num_samples, header.original_num_samples)
    frames = codes.codes[..., : header.num_frames]
    chunks = (frames[..., i : i + block_frames] for i in range(0, header.num_frames, block_frames))
    return decode_codes(codec, header, _counted(chunks, progress), lambda: end, sink, sample_rate)


def decode_codes(
    codec: Codec,
    header: StreamHeader,
    chunks: Iterable[torch.Tensor],
    end: Callable[[], StreamEnd | None],
    sink: Callable[[torch.Tensor], None],
    sample_rate: int | None = None,
) -> int:
    """Decode code chunks ``[C, K, f]`` to audio chunks ``[C, n]`` passed to ``sink``.

    ``end()`` is called after the last chunk for the true lengths.  Output is at
    ``sample_rate`` (default: ``header.original_sample_rate``), trimmed to the original length
    when that is the output rate.  Returns the output rate.
    """
    out_sr = sample_rate or header.original_sample_rate
    dec = CodesDecoder(codec, header.channels, out_sr)
    for codes in chunks:
        wav = dec.push(codes)
        if wav.shape[-1]:
            sink(wav)
    lengths = check_end(header, end())
    want = lengths.original_num_samples if out_sr == header.original_sample_rate else None
    sink(dec.finish(lengths.num_samples, want))
    return out_sr


def check_header(codec: Codec, header: StreamHeader, name: object) -> None:
    """Refuse codes made by other weights (or incompatible with this model)."""
    problem = codec.identity.mismatch(header.model, header.fingerprint, header.config_hash)
    if problem:
        raise TokenFileError(f"{name}: {problem}; pass the right --model")
    if header.num_codebooks > codec.total_codebooks or header.codebook_size != codec.codebook_size:
        raise TokenFileError(f"{name}: codes do not fit model {codec.name!r}")


def check_end(header: StreamHeader, end: StreamEnd | None) -> StreamEnd:
    """The end lengths, checked for consistency with each other and the header."""
    if end is None:
        raise TokenFileError("token stream ended without its end packet")
    if end.num_samples < 1:
        raise TokenFileError("no audio: the token stream holds zero samples")
    back = resampled_length(end.original_num_samples, header.original_sample_rate, header.sample_rate)
    if back != end.num_samples:
        raise TokenFileError(
            f"inconsistent lengths: {end.original_num_samples} samples at {header.original_sample_rate} Hz "
            f"are not {end.num_samples} samples at {header.sample_rate} Hz"
        )
    return end


def _tee(parts: list[torch.Tensor], writer: AudioFileWriter | None) -> Callable[[torch.Tensor], None]:
    def sink(wav: torch.Tensor) -> None:
        parts.append(wav)
        if writer is not None:
            writer.write(wav)

    return sink


def make_codes(codec: Codec, codes: torch.Tensor, enc: AudioEncoder) -> Codes:
    """One item's :class:`Codes` from codes ``[C, K, F]`` and the lengths ``enc`` counted."""
    return Codes(
        codes=codes, lengths=torch.tensor([enc.num_samples]), sample_rate=codec.sample_rate,
        hop_length=codec.hop_length, codebook_size=codec.codebook_size, channels=enc.channels,
        original_sample_rate=enc.sample_rate, original_lengths=torch.tensor([enc.original_num_samples]),
        model=codec.name, fingerprint=codec.fingerprint,
    )  # fmt: skip


def _counted(
    blocks: Iterable[torch.Tensor], progress: Callable[[int], None] | None
) -> Iterator[torch.Tensor]:
    for block in blocks:
        yield block
        if progress is not None:
            progress(block.shape[-1])
