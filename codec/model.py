"""CodecModel: encoder -> residual VQ -> decoder, a plain ``nn.Module`` built by :func:`build_model`.

Shapes are per mono row: ``wav [N, T]`` with ``T = F * hop_length``, latents channels-last
``[N, F, latent_dim]``, codes ``[N, K, F]``.  Every stage takes an optional streaming state;
``None`` means "start from silence", which is what offline processing does, so the offline
and streaming paths are the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from codec.config import CodecConfig
from codec.modules.conv import StreamState
from codec.modules.convnext import ConvNeXtTrunk, TrunkState
from codec.modules.linear import Linear
from codec.modules.spectral import ISTFTHead, SampleTailState, STFTFrontend
from codec.quantize import QuantizerOutput, ResidualVQ


@dataclass
class EncoderState(StreamState):
    frontend: SampleTailState
    trunk: TrunkState


@dataclass
class DecoderState(StreamState):
    trunk: TrunkState
    head: SampleTailState


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
        self.frontend = STFTFrontend(cfg.hop_length, e.dim)
        self.trunk = ConvNeXtTrunk(e.dim, e.intermediate_dim, e.num_layers, e.kernel_size, cfg.causal)
        self.proj = Linear(e.dim, cfg.latent_dim)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> EncoderState:
        return EncoderState(
            self.frontend.init_state(batch_size, device, dtype),
            self.trunk.init_state(batch_size, device, dtype),
        )

    def forward(
        self, wav: torch.Tensor, state: EncoderState | None = None, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: wav ``[N, F * hop]``. Returns latent ``[N, F, latent_dim]``."""
        x = self.frontend(wav, None if state is None else state.frontend)
        x = self.trunk(x, None if state is None else state.trunk, frame_mask)
        return self.proj(x)


class Decoder(nn.Module):
    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        d = cfg.decoder
        self.proj = Linear(cfg.latent_dim, d.dim)
        self.trunk = ConvNeXtTrunk(d.dim, d.intermediate_dim, d.num_layers, d.kernel_size, cfg.causal)
        self.head = ISTFTHead(d.dim, cfg.hop_length, d.head, d.head_upsample)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> DecoderState:
        return DecoderState(
            self.trunk.init_state(batch_size, device, dtype), self.head.init_state(batch_size, device, dtype)
        )

    def forward(
        self, latent: torch.Tensor, state: DecoderState, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: latent ``[N, F, latent_dim]``; state updated in place.

        Returns ``[N, F * hop]``, delayed by ``hop`` samples (see :mod:`codec.modules.spectral`).
        """
        causal = self.trunk.blocks[0].dwconv.causal
        # A causal trunk never lets padding frames reach earlier frames: no mask needed there.
        x = self.trunk(self.proj(latent), state.trunk, None if causal else frame_mask)
        return self.head(x, state.head, frame_mask)


class CodecModel(nn.Module):
    """Encoder, residual VQ and decoder for one config."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = ResidualVQ(cfg.latent_dim, cfg.quantizer)
        self.decoder = Decoder(cfg)

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    @property
    def decoder_delay(self) -> int:
        """Samples by which streamed decoder output lags the codes (the iSTFT lookahead)."""
        return self.cfg.hop_length

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
        return self.decoder(latent.to(self.decoder.proj.weight.dtype), state, frame_mask)

    def decode_offline(self, codes: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Codes ``[N, K, F]`` -> aligned waveform ``[N, F * hop]`` (a fresh stream, flushed)."""
        state = self.decoder.init_state(codes.shape[0], codes.device, next(self.decoder.parameters()).dtype)
        out = self.decode(codes, state, frame_mask)
        return torch.cat([out, state.head.tail.to(out.dtype)], dim=-1)[:, self.decoder_delay :]

    def forward(self, wav: torch.Tensor, num_codebooks: int | None = None) -> ModelOutput:
        """Training/analysis forward. Args: wav ``[N, F * hop]``. Returns aligned ``[N, F * hop]``."""
        latent = self.encoder(wav)
        n, f, d = latent.shape
        q = self.quantizer(latent.reshape(n * f, d), num_codebooks)
        return ModelOutput(self.synthesize(q.quantized.reshape(n, f, d)), q)

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        """Quantized latent ``[N, F, D]`` -> aligned waveform ``[N, F * hop]`` (differentiable)."""
        state = self.decoder.init_state(latent.shape[0], latent.device, latent.dtype)
        out = self.decoder(latent, state)
        return torch.cat([out, state.head.tail.to(out.dtype)], dim=-1)[:, self.decoder_delay :]


def build_model(cfg: CodecConfig) -> CodecModel:
    """A randomly initialised model for ``cfg``."""
    return CodecModel(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
