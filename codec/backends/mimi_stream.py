"""Streaming Mimi: stateful encode and decode in any chunking, equal to coding the whole signal.

Mimi is causal end to end: its convolutions see only the past, its transformers attend
causally (within a sliding window), and its transposed convolutions are trimmed on the right.
Encoding streams through ``transformers``' own state (``use_streaming``: the convolutions'
padding cache and the transformer's key/value cache).  The decoder has no streaming state in
``transformers``, so :class:`MimiStream` carries it layer by layer:

- a causal convolution keeps the last ``padding_total`` inputs it needs (the left context
  that offline decoding gets from its zero padding and the earlier frames);
- a transposed convolution of stride ``s`` and kernel ``k`` emits ``s`` samples per input step
  and keeps the ``k - s`` samples that overlap the next call, added to its first outputs (its
  bias subtracted once, so overlapping samples get it once, as offline);
- the decoder transformer keeps a key/value cache.

Mimi has no decoder lookahead: each frame's audio is final when the frame is decoded.  Only
the last partial frame of the input waits for :meth:`MimiStream.flush`.
"""

from __future__ import annotations

from typing import Any

import torch

from codec.backends.base import Backend
from codec.checks import check_codes
from codec.errors import CodesError
from codec.streaming import StreamFlush, StreamingError
from codec.tokens.codes import Codes


class MimiStream:
    """``batch_size`` independent streams of ``channels`` channels on one Mimi model
    (``backend``: a :class:`codec.backends.hf.MimiBackend`).

    The interface of :class:`codec.streaming.Stream`: ``encode`` takes chunks of any length and
    returns the codes of the frames completed, ``decode`` turns frames into ``f * hop`` samples,
    ``flush`` ends both directions, ``reset()`` starts afresh.
    """

    def __init__(self, backend: Backend, batch_size: int, channels: int, num_codebooks: int) -> None:
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (batch_size, channels)):
            raise StreamingError(f"batch_size and channels must be >= 1, got {batch_size} and {channels}")
        self.backend, self.model = backend, backend.model
        self.batch_size, self.channels, self.num_codebooks = batch_size, channels, num_codebooks
        self._rows = batch_size * channels
        self._start()

    def _start(self) -> None:
        param = next(self.model.parameters())
        self._pending = torch.zeros(self._rows, 0, device=param.device, dtype=param.dtype)
        self._encoder: dict[str, Any] = {}
        self._decoder = _DecoderState(self.model)
        self._decoded = False

    @property
    def hop_length(self) -> int:
        return self.backend.hop_length

    @property
    def lookahead(self) -> int:
        return 0

    @property
    def pending_samples(self) -> int:
        return self._pending.shape[-1]

    @property
    def tail(self) -> torch.Tensor:
        """``[B, C, 0]``: the decoder holds nothing back."""
        return self._pending.new_zeros(self.batch_size, self.channels, 0)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: wav ``[B, C, T]`` (any T >= 0) at the model's rate. Returns codes ``[B * C, K, f]``."""
        if wav.dim() != 3 or tuple(wav.shape[:2]) != (self.batch_size, self.channels):
            raise StreamingError(
                f"stream.encode expects [B={self.batch_size}, C={self.channels}, T], got {tuple(wav.shape)}"
            )
        if not wav.is_floating_point():
            raise StreamingError(f"stream.encode expects float samples in [-1, 1], got {wav.dtype}")
        if not torch.isfinite(wav).all():
            raise StreamingError("stream.encode: chunk contains NaN or Inf samples")
        x = torch.cat([self._pending, wav.reshape(self._rows, -1).to(self._pending)], dim=-1)
        usable = x.shape[-1] // self.hop_length * self.hop_length
        self._pending = x[:, usable:]
        if usable == 0:
            return torch.zeros(self._rows, self.num_codebooks, 0, dtype=torch.long, device=x.device)
        return self._encode(x[:, :usable])

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.encode(
            x[:, None], num_quantizers=self.num_codebooks, use_streaming=True, return_dict=True,
            padding_cache=self._encoder.get("padding"), encoder_cache=self._encoder.get("cache"),
        )  # fmt: skip
        self._encoder = {"padding": out.padding_cache, "cache": out.encoder_cache}
        return out.audio_codes

    @torch.no_grad()
    def decode(self, codes: Codes | torch.Tensor) -> torch.Tensor:
        """Args: codes ``[B * C, K, f]`` or :class:`Codes` of this model. Returns ``[B, C, f * hop]``."""
        if isinstance(codes, Codes):
            self.backend._check_codes_match(codes)
            if (codes.batch_size, codes.channels) != (self.batch_size, self.channels):
                raise CodesError(
                    f"codes hold {codes.batch_size} items of {codes.channels} channels, this stream "
                    f"{self.batch_size} of {self.channels}"
                )
            codes = codes.codes
        check_codes(codes, self._rows, self.backend.total_codebooks, self.backend.codebook_size)
        self._decoded = True
        if codes.shape[-1] == 0:
            return self._pending.new_zeros(self.batch_size, self.channels, 0)
        wav = self._decoder.step(codes.to(self._pending.device, torch.long))
        return wav.reshape(self.batch_size, self.channels, -1)

    @torch.no_grad()
    def flush(self) -> StreamFlush:
        """The last partial frame's codes (zero-padded) and, if this stream decodes, its audio."""
        codes = torch.zeros(self._rows, self.num_codebooks, 0, dtype=torch.long, device=self._pending.device)
        if self.pending_samples:
            pad = self.hop_length - self.pending_samples
            codes = self._encode(torch.nn.functional.pad(self._pending, (0, pad)))
        wav = self.decode(codes) if self._decoded and codes.shape[-1] else self.tail
        self._start()
        return StreamFlush(codes, wav)

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Restart every stream (Mimi's caches are per batch: items cannot restart alone)."""
        if mask is not None and not bool(torch.as_tensor(mask).all()):
            raise StreamingError("a Mimi stream restarts all its items together: call reset() without a mask")
        self._start()


class _DecoderState:
    """The decoder's streaming state: per-layer context and overlap, and the transformer's cache."""

    def __init__(self, model: Any) -> None:
        dec = model.decoder
        self.quantizer, self.upsample = model.quantizer, dec.upsample
        self.transformer, self.seanet = dec.decoder_transformer, dec.decoder_seanet
        self.config = dec.config
        self.context: dict[int, torch.Tensor] = {}
        self.overlap: dict[int, torch.Tensor] = {}
        self.cache: Any = None

    def step(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, K, f]`` -> audio ``[N, 1, f * hop]``."""
        from transformers import DynamicCache

        h = self.quantizer.decode(codes)
        if self.upsample is not None:
            h = self._transposed(self.upsample, h)
        if self.cache is None:
            self.cache = DynamicCache(config=self.config)
        h = self.transformer(h.transpose(1, 2), cache=self.cache, use_cache=True).last_hidden_state
        return self._layers(self.seanet.layers, h.transpose(1, 2))

    def _layers(self, layers: Any, h: torch.Tensor) -> torch.Tensor:
        from transformers.models.mimi import modeling_mimi as mm

        for layer in layers:
            if isinstance(layer, mm.MimiConv1d):
                h = self._conv(layer, h)
            elif isinstance(layer, mm.MimiConvTranspose1d):
                h = self._transposed(layer, h)
            elif isinstance(layer, mm.MimiResnetBlock):
                shortcut = layer.shortcut
                skip = self._conv(shortcut, h) if isinstance(shortcut, mm.MimiConv1d) else shortcut(h)
                h = skip + self._layers(layer.block, h)
            else:
                h = layer(h)
        return h

    def _conv(self, layer: Any, h: torch.Tensor) -> torch.Tensor:
        if not layer.causal:
            raise StreamingError("this Mimi has non-causal convolutions: it cannot stream")
        pad = int(layer.padding_total)
        before = self.context.get(id(layer))
        if before is None:
            first = h[..., :1] if layer.pad_mode == "replicate" else torch.zeros_like(h[..., :1])
            before = first.expand(-1, -1, pad)
        full = torch.cat([before, h], dim=-1)
        self.context[id(layer)] = full[..., full.shape[-1] - pad :]
        return layer.conv(full)

    def _transposed(self, layer: Any, h: torch.Tensor) -> torch.Tensor:
        if layer.padding_left:
            raise StreamingError("this Mimi trims its transposed convolutions on the left: it cannot stream")
        y = layer.conv(h)
        n = h.shape[-1] * layer.conv.stride[0]
        overlap = self.overlap.get(id(layer))
        if overlap is not None:
            y = torch.cat([y[..., : overlap.shape[-1]] + overlap, y[..., overlap.shape[-1] :]], dim=-1)
        rest = y[..., n:]
        if layer.conv.bias is not None:
            rest = rest - layer.conv.bias[:, None]
        self.overlap[id(layer)] = rest
        return y[..., :n]
