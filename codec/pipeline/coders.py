"""The block encoder and decoder cores: audio blocks ``[C, n]`` <-> code chunks ``[C, K, f]``.

They sit between every source and sink (:mod:`codec.pipeline.run`).  A causal model codes
block by block: audio is resampled to the model rate without seams
(:class:`~codec.pipeline.resample.BlockResampler`) and fed to a :class:`~codec.streaming.Stream`
in chunks of whole multiples of 16 frames (the chunk size at which streaming is bit-exact
with offline encoding), so the codes equal those of ``Codec.encode`` on the whole input.
Decoding streams the codes back, drops the decoder's pre-roll, restores the wanted rate and
trims to the true length.  Memory is bounded by the chunk size, never by the input's length
or by what a header claims.  A non-causal model cannot stream, so it keeps the input and
codes it whole at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from codec.api import Codec
from codec.audio import AudioError, resample, resampled_length
from codec.pipeline.resample import BlockResampler
from codec.streaming import EXACT_FRAMES, Preroll
from codec.tokenfile.file import codes_from_header
from codec.tokenfile.header import FileHeader, TokenFileError

DEFAULT_BLOCK_SECONDS = 10.0


def chunk_frames(codec: Codec, block_seconds: float) -> int:
    """Frames per model call for ``block_seconds``: a whole multiple of 16 (exact streaming)."""
    if not 0 < block_seconds < float("inf"):
        raise AudioError(f"block_seconds must be a positive number, got {block_seconds}")
    return EXACT_FRAMES * max(1, round(block_seconds * codec.frame_rate / EXACT_FRAMES))


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
            codes bit-exact with offline encoding); ``None`` feeds every whole frame as soon
            as it is complete (lowest latency, for live pipes).
        max_frames: the most frames per model call when ``chunk_frames`` is ``None``, so a
            large block never becomes one huge call.
    """

    def __init__(
        self,
        codec: Codec,
        channels: int,
        sample_rate: int,
        num_codebooks: int | None = None,
        chunk_frames: int | None = None,
        max_frames: int = 16 * 32,
    ) -> None:
        self.codec, self.channels, self.sample_rate = codec, channels, sample_rate
        self.num_codebooks = num_codebooks or codec.total_codebooks
        if not 1 <= self.num_codebooks <= codec.total_codebooks:
            raise AudioError(f"num_codebooks must be in 1..{codec.total_codebooks}, got {num_codebooks}")
        self.stream = codec.stream(1, channels, self.num_codebooks) if codec.causal else None
        self.resampler = None
        if sample_rate != codec.sample_rate and codec.causal:
            self.resampler = BlockResampler(sample_rate, codec.sample_rate, channels)
        self._step = codec.hop_length * (chunk_frames or 1)
        self._limit = codec.hop_length * (chunk_frames or max(1, max_frames))
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
            padded = max(frames, EXACT_FRAMES) * self.codec.hop_length
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
        parts = [
            self.stream.encode(self._pending[None, :, i : min(i + self._limit, usable)])
            for i in range(0, usable, self._limit)
        ]
        self._pending = self._pending[:, usable:]
        return self._cat(parts)

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
        return torch.cat(parts, dim=-1).cpu()  # sinks and buffers live on the CPU, the model may not


class CodesDecoder:
    """Streams codes ``[C, K, f]`` to audio ``[C, n]`` at ``sample_rate``.

    The decoder's pre-roll is dropped, so the output starts at time zero; output is released
    as soon as it is final, and :meth:`finish` trims it to the true length.  A non-causal
    model keeps the codes and decodes them whole in :meth:`finish`.

    Args:
        codec: the model.
        channels: C.
        sample_rate: output rate (default: the model's); resampled without seams.
        name: how errors name the codes' origin (a file name).
    """

    def __init__(
        self, codec: Codec, channels: int, sample_rate: int | None = None, name: object = "codes"
    ) -> None:
        self.codec, self.channels, self.name = codec, channels, name
        self.sample_rate = sample_rate or codec.sample_rate
        self.stream = codec.stream(1, channels) if codec.causal else None
        self.resampler = None
        if self.sample_rate != codec.sample_rate and codec.causal:
            self.resampler = BlockResampler(codec.sample_rate, self.sample_rate, channels)
        self._preroll = Preroll(codec.lookahead)
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
        return self._take(self.stream.decode(codes)[0].float().cpu(), self._hold)

    def finish(self, num_samples: int, out_num_samples: int | None = None) -> torch.Tensor:
        """End of codes. Returns the rest of the audio ``[C, n]``.

        Args:
            num_samples: the true length at the model rate.
            out_num_samples: the length wanted at the output rate (default: ``num_samples``
                resampled; pass the original length when decoding to the original rate).
        """
        hop = self.codec.hop_length
        if not (self.frames - 1) * hop < num_samples <= self.frames * hop:
            raise TokenFileError(
                f"{self.name}: length {num_samples} does not fit {self.frames} frames of {hop} samples"
            )
        if out_num_samples is None:
            out_num_samples = int(resampled_length(num_samples, self.codec.sample_rate, self.sample_rate))
        if self.stream is None:
            return self._finish_offline(num_samples, out_num_samples)
        before = self._out
        parts = [self._take(self.stream.flush().wav[0].float().cpu(), 0, limit=num_samples)]
        if self.resampler:
            parts.append(self.resampler.finish())
        out = torch.cat(parts, dim=-1)
        keep = out_num_samples - before
        if not 0 <= keep <= out.shape[-1]:
            raise RuntimeError(f"decoder produced {before + out.shape[-1]} samples, {out_num_samples} wanted")
        self._out = out_num_samples
        return out[:, :keep]

    def _take(self, wav: torch.Tensor, hold: int, limit: int | None = None) -> torch.Tensor:
        held = torch.cat([self._held, self._preroll.drop(wav)], dim=-1)
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
        data = torch.cat(self._codes, dim=-1)
        header = FileHeader(
            c.name, c.fingerprint, c.sample_rate, c.hop_length, self.channels, data.shape[1],
            c.codebook_size, c.sample_rate, num_frames=data.shape[-1], num_samples=num_samples,
            original_num_samples=num_samples,
        )  # fmt: skip
        codes = codes_from_header(header, data)
        wav = resample(c.decode(codes)[0], c.sample_rate, self.sample_rate)
        wav = torch.nn.functional.pad(wav, (0, max(0, out_num_samples - wav.shape[-1])))
        self._codes = []
        return wav[:, :out_num_samples]
