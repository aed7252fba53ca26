"""CodecModel: encoder -> residual VQ -> decoder, a plain ``nn.Module`` built by :func:`build_model`.

Shapes are per mono row: ``wav [N, T]`` with ``T = F * hop_length``, latents channels-last
``[N, F, latent_dim]``, codes ``[N, K, F]``.  Every stage takes an optional streaming state;
``None`` means "start from silence", which is what offline processing does, so the offline
and streaming paths are the same code.

A trunk may change rate inside (``encoder.downsample``, ``decoder.upsample``): the STFT front
end and the first ``fine_layers`` encoder blocks then run ``downsample`` times faster than the
frame rate, and the last ``fine_layers`` decoder blocks and the iSTFT head ``upsample`` times
faster.  The decoder's lookahead is one head hop, ``hop_length / upsample`` samples.

``architecture: lyra_v2`` swaps both trunks for Lyra v2's encoder and decoder
(:mod:`codec.modules.lyra`: same interfaces, no decoder lookahead); the quantizer is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from codec.config import CodecConfig
from codec.modules.conv import StreamState
from codec.modules.convnext import ConvNeXtTrunk, TrunkState
from codec.modules.linear import Linear
from codec.modules.lyra import LyraDecoder, LyraEncoder
from codec.modules.resample import FramePool, FrameUnpool, repeat_mask
from codec.modules.spectral import HeadState, ISTFTHead, SampleTailState, STFTFrontend
from codec.quantize import QuantizerOutput, ResidualVQ
from codec.streaming import aligned


@dataclass
class EncoderState(StreamState):
    """``fine``: the blocks before downsampling (None without them)."""

    frontend: SampleTailState
    trunk: TrunkState
    fine: TrunkState | None = None


@dataclass
class DecoderState(StreamState):
    """``fine``: the blocks after upsampling (None without them)."""

    trunk: TrunkState
    head: HeadState
    fine: TrunkState | None = None


@dataclass
class ModelOutput:
    """Training forward result.

    Attributes:
        wav: ``[N, T]`` reconstruction, aligned with the input.
        quantizer: codes, straight-through latent and quantizer losses.
    """

    wav: torch.Tensor
    quantizer: QuantizerOutput


class Encoder(nn.Module):
    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        e = cfg.encoder
        self.stride = e.downsample
        self.frontend = STFTFrontend(cfg.hop_length // e.downsample, e.dim)
        # Built only when configured: models without them keep their saved parameter names.
        self.fine = _trunk(e.dim, e.intermediate_dim, e.fine_layers, e.kernel_size, cfg.causal)
        self.pool = FramePool(e.dim, e.dim, e.downsample) if e.downsample > 1 else None
        self.trunk = ConvNeXtTrunk(e.dim, e.intermediate_dim, e.num_layers, e.kernel_size, cfg.causal)
        self.proj = Linear(e.dim, cfg.latent_dim)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> EncoderState:
        return EncoderState(
            self.frontend.init_state(batch_size, device, dtype),
            self.trunk.init_state(batch_size, device, dtype),
            None if self.fine is None else self.fine.init_state(batch_size, device, dtype),
        )

    def forward(
        self, wav: torch.Tensor, state: EncoderState | None = None, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: wav ``[N, F * hop]``; frame_mask ``[N, F, 1]`` (non-causal models).

        Returns latent ``[N, F, latent_dim]``.
        """
        x = self.frontend(wav, None if state is None else state.frontend)
        if self.fine is not None:
            x = self.fine(x, None if state is None else state.fine, repeat_mask(frame_mask, self.stride))
        if self.pool is not None:
            x = self.pool(x)
        x = self.trunk(x, None if state is None else state.trunk, frame_mask)
        return self.proj(x)


class Decoder(nn.Module):
    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        d = cfg.decoder
        self.stride = d.upsample
        self.proj = Linear(cfg.latent_dim, d.dim)
        self.trunk = ConvNeXtTrunk(d.dim, d.intermediate_dim, d.num_layers, d.kernel_size, cfg.causal)
        self.unpool = FrameUnpool(d.dim, d.dim, d.upsample) if d.upsample > 1 else None
        self.fine = _trunk(d.dim, d.intermediate_dim, d.fine_layers, d.kernel_size, cfg.causal)
        self.head = ISTFTHead(d.dim, cfg.hop_length // d.upsample, d.head, d.head_upsample, d.head_window)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> DecoderState:
        return DecoderState(
            self.trunk.init_state(batch_size, device, dtype),
            self.head.init_state(batch_size, device, dtype),
            None if self.fine is None else self.fine.init_state(batch_size, device, dtype),
        )

    def forward(
        self, latent: torch.Tensor, state: DecoderState, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: latent ``[N, F, latent_dim]``; state updated in place.

        Returns ``[N, F * hop]``, delayed by the head's hop (see :mod:`codec.modules.spectral`).
        """
        causal = self.trunk.blocks[0].dwconv.causal
        # A causal trunk never lets padding frames reach earlier frames: no mask needed there.
        x = self.trunk(self.proj(latent), state.trunk, None if causal else frame_mask)
        fine_mask = repeat_mask(frame_mask, self.stride)
        if self.unpool is not None:
            x = self.unpool(x)
        if self.fine is not None:
            x = self.fine(x, state.fine, None if causal else fine_mask)
        return self.head(x, state.head, fine_mask)

    @property
    def delay(self) -> int:
        """Samples by which the output lags the latent: the iSTFT lookahead, one head hop."""
        return self.head.hop


class CodecModel(nn.Module):
    """Encoder, residual VQ and decoder for one config."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        lyra = cfg.architecture == "lyra_v2"
        self.encoder: Encoder | LyraEncoder = LyraEncoder() if lyra else Encoder(cfg)
        self.quantizer = ResidualVQ(cfg.latent_dim, cfg.quantizer)
        self.decoder: Decoder | LyraDecoder = LyraDecoder() if lyra else Decoder(cfg)

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    @property
    def decoder_delay(self) -> int:
        """Samples by which streamed decoder output lags the codes (the iSTFT lookahead: one
        head hop, ``hop_length / decoder.upsample``; none for Lyra v2's decoder)."""
        return self.decoder.delay

    def encode(
        self,
        wav: torch.Tensor,
        num_codebooks: int | None = None,
        state: EncoderState | None = None,
        frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args: wav ``[N, F * hop]``. Returns codes ``[N, K, F]`` int64."""
        latent = self.encoder(wav, state, frame_mask)
        n, f, d = latent.shape
        codes = self.quantizer.encode(latent.reshape(n * f, d), num_codebooks)
        return codes.reshape(n, f, -1).transpose(1, 2)

    def decode(
        self, codes: torch.Tensor, state: DecoderState, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: codes ``[N, K, F]``; state updated in place. Returns ``[N, F * hop]`` delayed by ``hop``."""
        n, k, f = codes.shape
        latent = self.quantizer.decode(codes.transpose(1, 2).reshape(n * f, k)).reshape(n, f, -1)
        return self.decoder(latent.to(next(self.decoder.parameters()).dtype), state, frame_mask)

    def decode_offline(self, codes: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Codes ``[N, K, F]`` -> aligned waveform ``[N, F * hop]`` (a fresh stream, flushed)."""
        state = self.decoder.init_state(codes.shape[0], codes.device, next(self.decoder.parameters()).dtype)
        return aligned(self.decode(codes, state, frame_mask), state.head.tail, self.decoder_delay)

    def forward(self, wav: torch.Tensor, num_codebooks: int | None = None) -> ModelOutput:
        """Training/analysis forward. Args: wav ``[N, F * hop]``. Returns aligned ``[N, F * hop]``."""
        latent = self.encoder(wav)
        n, f, d = latent.shape
        q = self.quantizer(latent.reshape(n * f, d), num_codebooks)
        return ModelOutput(self.synthesize(q.quantized.reshape(n, f, d)), q)

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        """Quantized latent ``[N, F, D]`` -> aligned waveform ``[N, F * hop]`` (differentiable)."""
        state = self.decoder.init_state(latent.shape[0], latent.device, latent.dtype)
        return aligned(self.decoder(latent, state), state.head.tail, self.decoder_delay)


def _trunk(
    dim: int, intermediate_dim: int, layers: int, kernel_size: int, causal: bool
) -> ConvNeXtTrunk | None:
    return ConvNeXtTrunk(dim, intermediate_dim, layers, kernel_size, causal) if layers else None


def build_model(cfg: CodecConfig) -> CodecModel:
    """A randomly initialised model for ``cfg``."""
    return CodecModel(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
