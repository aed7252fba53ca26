"""Audio that arrives or leaves in blocks: seamless resampling, progressive atomic writing, raw PCM.

The pieces the file and pipe paths (:mod:`codec.files`, the CLI) need to keep memory bounded:
:class:`BlockResampler` (a block-wise resampler equal to resampling the whole signal),
:class:`AudioFileWriter` (writes as audio comes, renames only on success) and raw PCM on pipes.

Raw PCM (audio on stdin/stdout): little-endian ``s16le`` (default) or ``f32le`` samples,
channels interleaved, no header; the rate and channel count are given on the command line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from codec.atomic import commit, temp_path
from codec.audio import WRITE_FORMATS, AudioError

PCM_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
# torchaudio.functional.resample's defaults, which codec.audio.resample uses.
_LOWPASS_WIDTH, _ROLLOFF = 6, 0.99


class BlockResampler:
    """Resamples a signal arriving in blocks; the output equals ``resample`` of the whole.

    torchaudio has no streaming resampler, so this one reuses ``torchaudio.functional.resample``
    on a window that keeps enough context: with rates reduced by their gcd to ``orig : new``,
    output group ``g`` (``new`` samples) reads input samples ``[g * orig - width,
    (g + 1) * orig + width)``.  A group is emitted once its right context has arrived, computed
    on a buffer that starts a whole number of groups (at least ``width`` samples) before it, so
    the sinc kernel lines up with the whole-signal computation.  The result matches it to float
    precision (the same products, summed by a convolution over a different length).

    Args: orig_sr, new_sr: input and output rates in Hz; channels: C of the blocks ``[C, n]``.
    """

    def __init__(self, orig_sr: int, new_sr: int, channels: int = 1) -> None:
        self.orig_sr, self.new_sr, self.channels = orig_sr, new_sr, channels
        g = math.gcd(orig_sr, new_sr)
        self.orig, self.new = orig_sr // g, new_sr // g
        self.width = math.ceil(_LOWPASS_WIDTH * self.orig / (min(self.orig, self.new) * _ROLLOFF))
        self._context_groups = -(-self.width // self.orig) + 1
        self._buf: torch.Tensor | None = None
        self._buf_group = 0  # group index where the buffer starts
        self._next = 0  # next output group to emit
        self._total = 0  # input samples received

    def push(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[C, n]``. Returns ``[C, m]``, the output samples that are now final."""
        self._buf = x if self._buf is None else torch.cat([self._buf, x], dim=-1)
        self._total += x.shape[-1]
        ready = (self._total - self.orig - self.width) // self.orig + 1
        return self._emit(ready)

    def finish(self) -> torch.Tensor:
        """End of input: ``[C, m]``, the rest of the output (total ``ceil(n * new / orig)``)."""
        return self._emit(None)

    def _emit(self, end_group: int | None) -> torch.Tensor:
        if self._buf is None:
            return torch.zeros(self.channels, 0)
        if end_group is not None and end_group <= self._next:
            return self._buf[:, :0]
        y = AF.resample(self._buf, self.orig_sr, self.new_sr)
        first = (self._next - self._buf_group) * self.new
        if end_group is None:
            out, self._next = y[:, first:], self._next + -(-(y.shape[-1] - first) // self.new)
        else:
            out, self._next = y[:, first : (end_group - self._buf_group) * self.new], end_group
        start = max(0, self._next - self._context_groups)
        self._buf = self._buf[:, (start - self._buf_group) * self.orig :]
        self._buf_group = start
        return out


class AudioFileWriter:
    """Writes audio progressively to a temporary file beside ``path``; renamed on :meth:`commit`.

    Args: path: destination (WAV/FLAC/OGG by extension); the file is created on the first
    :meth:`write` (when the channel count is known) and 16-bit PCM for WAV/FLAC.
    """

    def __init__(self, path: str | Path, sample_rate: int | None = None) -> None:
        self.path = Path(path)
        self.format = WRITE_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise AudioError(
                f"{self.path}: unsupported output format (use one of {', '.join(sorted(WRITE_FORMATS))})"
            )
        self.sample_rate = sample_rate
        self._file: sf.SoundFile | None = None
        self._tmp: Path | None = None

    def open(self, sample_rate: int, channels: int) -> None:
        self._tmp = temp_path(self.path, self.path.suffix)
        subtype = "PCM_16" if self.format in ("WAV", "FLAC") else None
        self._file = sf.SoundFile(self._tmp, "w", sample_rate, channels, subtype, format=self.format)

    def write(self, wav: torch.Tensor) -> None:
        """Args: wav ``[C, n]``; samples are clipped to [-1, 1]."""
        if self._file is None:
            if self.sample_rate is None:
                raise ValueError("AudioFileWriter needs a sample rate before the first write")
            self.open(self.sample_rate, wav.shape[0])
        self._file.write(wav.clamp(-1.0, 1.0).T.contiguous().numpy())

    def commit(self) -> None:
        if self._file is None:
            raise AudioError(f"{self.path}: no audio to write")
        self._file.close()
        commit(self._tmp, self.path)
        self._file = None

    def abort(self) -> None:
        """Remove the temporary file (after an error); the destination is left untouched."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp:
            self._tmp.unlink(missing_ok=True)


def read_pcm(
    inp: BinaryIO, channels: int, pcm_format: str = "s16le", block_bytes: int = 1 << 16
) -> Iterator[torch.Tensor]:
    """Blocks ``[C, n]`` float32 of raw interleaved PCM from a binary stream, as data arrives.

    Uses ``read1`` where available so a live pipe is consumed as soon as bytes are there.
    """
    dtype = PCM_FORMATS[pcm_format]
    frame = dtype.itemsize * channels
    rest = b""
    read = getattr(inp, "read1", inp.read)
    while True:
        data = read(block_bytes)
        if not data:
            break
        data = rest + data
        usable = len(data) // frame * frame
        rest = data[usable:]
        if usable:
            yield _from_pcm(np.frombuffer(data[:usable], dtype=dtype), channels)
    if rest:
        raise AudioError(f"raw PCM input ends inside a sample frame ({len(rest)} stray bytes)")


def to_pcm(wav: torch.Tensor, pcm_format: str = "s16le") -> bytes:
    """Audio ``[C, n]`` in [-1, 1] -> interleaved raw PCM bytes (clipped; s16 rounded)."""
    x = wav.clamp(-1.0, 1.0).T.contiguous().numpy()
    if pcm_format == "s16le":
        return np.round(x * 32767.0).astype("<i2").tobytes()
    return x.astype("<f4").tobytes()


def _from_pcm(samples: np.ndarray, channels: int) -> torch.Tensor:
    x = samples.reshape(-1, channels).T.astype(np.float32)
    if samples.dtype.kind == "i":
        x /= 32768.0
    return torch.from_numpy(np.ascontiguousarray(x))
