"""Stateful causal streaming: the handle returned by ``Codec.stream()``.

A :class:`Stream` owns the per-layer state of one batch of independent streams (several
streams on one model never share state).  ``encode`` accepts chunks of any length, buffers
them to whole frames and returns the codes of the frames completed; ``decode`` turns any
number of frames (a tensor or :class:`~codec.tokens.Codes`) into ``frames * hop_length``
samples.  Decoded audio lags the codes by :attr:`Stream.lookahead` samples (the iSTFT
overlap): the first ``lookahead`` samples a stream produces are the pre-roll before time
zero, and :meth:`Stream.flush` returns the last ones.

Offline encoding and decoding run the same layers from a fresh (zero) state, so a stream in
any chunking reproduces the offline result.  This module owns the two numbers that promise
rests on: the decoder's pre-roll (:class:`Preroll` drops it from a stream's output,
:func:`aligned` from a whole signal's; the model, the pipeline and the step detokenizer use
them) and :data:`EXACT_FRAMES`, the fewest frames per model call at which streamed codes are
those of coding the whole input (offline inputs are padded to it, the pipeline streams in
whole multiples of it).

Every state tensor is allocated once and written in place (flush and reset zero it), so a
step of whole frames can be captured as a CUDA graph and replayed for many concurrent
streams: :meth:`Stream.step` is that step (no host synchronisation) and
:meth:`Stream.cuda_graph` captures it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from codec.audio import AudioError
from codec.checks import check_codes, check_count, check_num_codebooks, check_samples
from codec.errors import CodesError, InputError
from codec.modules.conv import reset_state
from codec.tokens.codes import Codes

if TYPE_CHECKING:  # the model imports this module for the pre-roll
    from codec.model import CodecModel

# Every matrix product of a call with at least this many frames takes the kernel path of one
# long call, so a row's result depends neither on the batch size nor on the chunking: offline
# inputs are padded to it (batch invariance) and streamed in whole multiples of it (streamed
# codes equal offline codes bit for bit).
EXACT_FRAMES = 16


class Preroll:
    """Drops a stream's pre-roll: the first ``lookahead`` samples its decoder produces lie
    before time zero.

    Args: lookahead: the decoder's lookahead in samples (:attr:`Stream.lookahead`).
    """

    def __init__(self, lookahead: int) -> None:
        self.remaining = lookahead

    def drop(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [..., n]``, the next samples of the stream, less what is still pre-roll."""
        n = min(self.remaining, wav.shape[-1])
        self.remaining -= n
        return wav[..., n:]


def aligned(out: torch.Tensor, tail: torch.Tensor, lookahead: int) -> torch.Tensor:
    """A whole signal decoded from a fresh state: the decoder's output ``[..., n]`` and the tail
    it still holds ``[..., lookahead]`` (what a flush gives), less the pre-roll: ``[..., n]``
    starting at time zero."""
    return Preroll(lookahead).drop(torch.cat([out, tail.to(out.dtype)], dim=-1))


class StreamingError(InputError, RuntimeError):
    """The model cannot stream, or a call does not fit the stream's state (samples pending,
    a reset mask of the wrong shape).  Arguments that ``Codec.encode``/``decode`` take too are
    checked by the same functions and raise the same errors there and here (audio:
    :class:`~codec.audio.AudioError`, codes: :class:`~codec.errors.CodesError`, counts:
    :class:`~codec.errors.InputError`)."""


@dataclass
class StepOutput:
    """What :meth:`Stream.step` returns.

    Attributes:
        codes: ``[B * C, K, f]`` codes of the step's ``f`` frames.
        wav: ``[B, C, f * hop]`` their audio, lagging by :attr:`Stream.lookahead`.
    """

    codes: torch.Tensor
    wav: torch.Tensor


@dataclass
class StreamFlush:
    """What :meth:`Stream.flush` returns.

    Attributes:
        codes: ``[B * C, K, f]`` codes of the buffered partial frame, zero-padded (``f`` is 0
            when nothing was pending).
        wav: ``[B, C, n]`` the audio still held by the decoder (``n = lookahead``, plus the
            decoded flushed frame when this stream decodes what it encodes; 0 if it never decoded).
    """

    codes: torch.Tensor
    wav: torch.Tensor


class Stream:
    """Args:
    model: a causal :class:`CodecModel`.
    batch_size: independent streams B.
    channels: channels per stream C (each coded separately).
    num_codebooks: codebooks produced by :meth:`encode` (default: all).
    check: what checks a :class:`Codes` given to :meth:`decode` against the model (its
        identity included; ``Codec.stream`` passes its own); default: rate, hop and codebook size.
    """

    def __init__(
        self,
        model: CodecModel,
        batch_size: int = 1,
        channels: int = 1,
        num_codebooks: int | None = None,
        check: Callable[[Codes], None] | None = None,
    ):
        if not model.cfg.causal:
            raise StreamingError(
                f"model {model.cfg.name!r} is not causal (causal: false in its config), so it cannot stream; "
                "use encode()/decode() on whole signals"
            )
        self.batch_size = check_count("batch_size", batch_size)
        self.channels = check_count("channels", channels)
        self.num_codebooks = check_num_codebooks(num_codebooks, model.quantizer.total_codebooks)
        self.model = model
        self._check = check
        param = next(model.parameters())
        self._device, self._dtype = param.device, param.dtype
        self._rows = batch_size * channels
        rows, dev, dt = self._rows, self._device, self._dtype
        self._enc = model.encoder.init_state(rows, dev, dt)
        self._dec = model.decoder.init_state(rows, dev, dt)
        # Samples towards the next frame: the first _pending_count columns are valid.
        self._pending = torch.zeros(rows, self.hop_length, device=dev, dtype=dt)
        self._pending_count = 0
        self._decoded = False

    def _start(self) -> None:
        """Back to a fresh stream, in place (the state tensors keep their memory)."""
        reset_state((self._enc, self._dec, self._pending))
        self._pending_count = 0
        self._decoded = False

    @property
    def hop_length(self) -> int:
        return self.model.hop_length

    @property
    def lookahead(self) -> int:
        """Samples by which decoded audio lags its codes (the decoder's algorithmic lookahead)."""
        return self.model.decoder_delay

    @property
    def tail(self) -> torch.Tensor:
        """``[B, C, lookahead]`` the audio the decoder holds back: what :meth:`flush` would end
        with now (a view; the next decode changes it)."""
        return self._dec.head.tail.reshape(self.batch_size, self.channels, -1)

    @property
    def pending_samples(self) -> int:
        """Samples received by :meth:`encode` but not yet part of a complete frame."""
        return self._pending_count

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: wav ``[B, C, T]`` (any T >= 0) at the model's sample rate.

        Returns codes ``[B * C, K, f]`` for the ``f`` frames completed by this chunk.
        """
        check_samples(wav, "stream.encode", (self.batch_size, self.channels))
        x = wav.reshape(self._rows, -1).to(self._device, self._dtype)
        if self._pending_count:
            x = torch.cat([self._pending[:, : self._pending_count], x], dim=1)
        hop = self.hop_length
        usable = (x.shape[1] // hop) * hop
        self._pending_count = x.shape[1] - usable
        self._pending[:, : self._pending_count].copy_(x[:, usable:])
        if usable == 0:
            return torch.zeros(self._rows, self.num_codebooks, 0, dtype=torch.long, device=self._device)
        return self.model.encode(x[:, :usable], self.num_codebooks, state=self._enc)

    @torch.no_grad()
    def decode(self, codes: Codes | torch.Tensor) -> torch.Tensor:
        """Decode the next ``f`` frames.

        Args: codes: an integer tensor ``[B * C, K, f]`` or a :class:`Codes` of ``B`` items of
            ``C`` channels (checked against the model like ``Codec.decode``; its lengths are not
            used: a stream decodes every frame it is given).
        Returns: ``[B, C, f * hop]``, lagging by :attr:`lookahead`.
        """
        if isinstance(codes, Codes):
            codes = self._codes_tensor(codes)
        codes = check_codes(
            codes, self._rows, self.model.quantizer.total_codebooks, self.model.cfg.quantizer.codebook_size
        )
        self._decoded = True
        if codes.shape[-1] == 0:
            return torch.zeros(self.batch_size, self.channels, 0, device=self._device, dtype=self._dtype)
        out = self.model.decode(codes.to(self._device), self._dec)
        return out.reshape(self.batch_size, self.channels, -1)

    def _codes_tensor(self, codes: Codes) -> torch.Tensor:
        if self._check is not None:
            self._check(codes)
        else:
            want = (self.model.cfg.sample_rate, self.hop_length, self.model.cfg.quantizer.codebook_size)
            if (codes.sample_rate, codes.hop_length, codes.codebook_size) != want:
                raise CodesError(
                    f"codes are for {codes.sample_rate} Hz / hop {codes.hop_length} / {codes.codebook_size} "
                    f"entries, this model is {want[0]} Hz / hop {want[1]} / {want[2]} entries"
                )
        if (codes.batch_size, codes.channels) != (self.batch_size, self.channels):
            raise CodesError(
                f"codes hold {codes.batch_size} items of {codes.channels} channels, this stream "
                f"{self.batch_size} of {self.channels}"
            )
        return codes.codes

    @torch.no_grad()
    def flush(self) -> StreamFlush:
        """End of input in both directions, then start afresh (see :class:`StreamFlush`)."""
        codes = torch.zeros(self._rows, self.num_codebooks, 0, dtype=torch.long, device=self._device)
        if self.pending_samples:
            self._pending[:, self._pending_count :] = 0
            codes = self.model.encode(self._pending.clone(), self.num_codebooks, self._enc)
        parts = []
        if self._decoded:
            if codes.shape[-1]:
                parts.append(self.decode(codes))
            parts.append(self._dec.head.tail.reshape(self.batch_size, self.channels, -1).clone())
        empty = torch.zeros(self.batch_size, self.channels, 0, device=self._device)
        wav = torch.cat(parts, dim=-1) if parts else empty
        self._start()
        return StreamFlush(codes, wav)

    @torch.no_grad()
    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Restart all streams (``mask=None``) or the streams ``b`` where ``mask [B]`` is True.

        A restarted stream continues as if it had just been created.  Samples it had buffered
        towards an incomplete frame are discarded (zeroed), so restart at frame boundaries
        (:attr:`pending_samples` == 0) for an exact fresh start.
        """
        if mask is None:
            self._start()
            return
        mask = torch.as_tensor(mask, dtype=torch.bool, device=self._device)
        if mask.shape != (self.batch_size,):
            raise StreamingError(f"reset mask must have shape [{self.batch_size}], got {tuple(mask.shape)}")
        rows = mask.repeat_interleave(self.channels)
        self._enc.reset(rows)
        self._dec.reset(rows)
        self._pending[rows] = 0

    @torch.no_grad()
    def step(self, wav: torch.Tensor) -> StepOutput:
        """Encode whole frames and decode their codes, without synchronising with the device.

        The fixed-shape step of a real-time loop (and what :meth:`cuda_graph` captures): no
        value checks (they would wait for the device), only shapes; nothing may be pending
        from :meth:`encode`.

        Args: wav ``[B, C, f * hop]`` at the model's rate, ``f >= 1``.
        Returns: :class:`StepOutput` (codes ``[B * C, K, f]``, audio ``[B, C, f * hop]``).
        """
        shape = (self.batch_size, self.channels)
        if (
            wav.dim() != 3
            or tuple(wav.shape[:2]) != shape
            or wav.shape[-1] % self.hop_length
            or not wav.shape[-1]
        ):
            raise StreamingError(
                f"stream.step expects [B={shape[0]}, C={shape[1]}, f * {self.hop_length}] with f >= 1, "
                f"got {tuple(wav.shape)}"
            )
        if not wav.is_floating_point():
            # A dtype check costs no device synchronisation; integer PCM would be coded unscaled.
            raise AudioError(f"stream.step expects float samples in [-1, 1], got {wav.dtype}")
        if self._pending_count:
            raise StreamingError(f"stream.step needs whole frames: {self._pending_count} samples are pending")
        x = wav.reshape(self._rows, -1).to(self._device, self._dtype)
        codes = self.model.encode(x, self.num_codebooks, self._enc)
        self._decoded = True
        out = self.model.decode(codes, self._dec)
        return StepOutput(codes, out.reshape(*shape, -1))

    def cuda_graph(self, frames: int = 1) -> CapturedStep:
        """:meth:`step` of ``frames`` frames captured as a CUDA graph (model on a CUDA device)."""
        return CapturedStep(self, frames)


class CapturedStep:
    """A stream's :meth:`Stream.step` captured once as a CUDA graph and replayed per call.

    Replays read and write the stream's own state (which never moves), so the stream goes on
    as if :meth:`Stream.step` had been called; capture leaves the stream freshly started.  The
    returned tensors are the graph's: the next call overwrites them (clone to keep).

    Args:
        stream: a :class:`Stream` whose model is on a CUDA device.
        frames: frames per step.
    """

    def __init__(self, stream: Stream, frames: int = 1) -> None:
        if stream._device.type != "cuda":
            raise StreamingError(f"CUDA graphs need the model on a CUDA device, it is on {stream._device}")
        self.stream = stream
        self.input = torch.zeros(
            stream.batch_size, stream.channels, frames * stream.hop_length, device=stream._device,
            dtype=stream._dtype,
        )  # fmt: skip
        # Warm up on a side stream (lazy initialisation, kernel autotuning), as capture requires.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                stream.step(self.input)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = stream.step(self.input)
        stream.reset()

    def __call__(self, wav: torch.Tensor) -> StepOutput:
        """Args: wav ``[B, C, frames * hop]``. Returns the graph's :class:`StepOutput`."""
        self.input.copy_(wav)
        self.graph.replay()
        return self.output
