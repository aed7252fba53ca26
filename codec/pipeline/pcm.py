"""Raw PCM on pipes: the PCM source (stdin) and sink (stdout).

Little-endian ``s16le`` (default) or ``f32le`` samples, channels interleaved, no header; the
rate and channel count are given on the command line.  The source reads at most
``block_seconds`` of audio per step, whatever the rate, and passes on what has arrived at
once (``read1``), so a live pipe is coded as it comes and memory never grows with the rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import torch

from codec.audio import AudioError

PCM_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


class PcmSource:
    """Raw interleaved PCM from a binary stream, as blocks ``[C, n]`` float32.

    Args:
        inp: a binary file object (``sys.stdin.buffer``).
        sample_rate: rate of the samples.
        channels: C.
        pcm_format: ``s16le`` or ``f32le``.
        block_seconds: the most audio read per step.
        name: how errors name the input.
    """

    def __init__(
        self,
        inp: BinaryIO,
        sample_rate: int,
        channels: int = 1,
        pcm_format: str = "s16le",
        block_seconds: float = 10.0,
        name: str = "<stdin>",
    ) -> None:
        if pcm_format not in PCM_FORMATS:
            raise AudioError(f"unknown PCM format {pcm_format!r} (use {', '.join(PCM_FORMATS)})")
        self.inp, self.name = inp, name
        self.sample_rate, self.channels, self.pcm_format = sample_rate, channels, pcm_format
        frame = PCM_FORMATS[pcm_format].itemsize * channels
        self.block_bytes = max(1, round(block_seconds * sample_rate)) * frame
        self.samples_read = 0

    def blocks(self) -> Iterator[torch.Tensor]:
        """Yields ``[C, n]`` as data arrives; raises :class:`AudioError` on NaN/Inf, stray bytes."""
        try:
            for block in read_pcm(self.inp, self.channels, self.pcm_format, self.block_bytes):
                if not torch.isfinite(block).all():
                    raise AudioError(f"{self.name}: audio contains NaN or Inf samples")
                self.samples_read += block.shape[-1]
                yield block
        except AudioError as err:
            if str(err).startswith(self.name):
                raise
            raise AudioError(f"{self.name}: {err}") from None
        if self.samples_read == 0:
            raise AudioError(f"{self.name}: empty input (zero samples)")


class PcmSink:
    """Writes audio ``[C, n]`` as raw PCM to a binary stream, flushed per block (players start at once)."""

    def __init__(self, out: BinaryIO, pcm_format: str = "s16le") -> None:
        self.out, self.pcm_format = out, pcm_format
        self.samples = 0

    def write(self, wav: torch.Tensor) -> None:
        self.out.write(to_pcm(wav, self.pcm_format))
        self.out.flush()
        self.samples += wav.shape[-1]

    def commit(self) -> None:
        self.out.flush()

    def abort(self) -> None:
        """Nothing to take back: what went down the pipe is gone."""


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
        data = read(max(block_bytes - len(rest), frame))
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
    x = wav.detach().cpu().float().clamp(-1.0, 1.0).T.contiguous().numpy()
    if pcm_format == "s16le":
        return np.round(x * 32767.0).astype("<i2").tobytes()
    return x.astype("<f4").tobytes()


def _from_pcm(samples: np.ndarray, channels: int) -> torch.Tensor:
    x = samples.reshape(-1, channels).T.astype(np.float32)
    if samples.dtype.kind == "i":
        x /= 32768.0
    return torch.from_numpy(np.ascontiguousarray(x))
