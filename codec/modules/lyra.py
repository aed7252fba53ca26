"""Lyra v2's encoder (SoundStream) and decoder (LyraGAN) as streaming PyTorch modules.

The shapes are those of Google's Lyra v2 models (16 kHz, 320-sample frames, a 64-d embedding
per frame); the weights come from its TFLite files (see :mod:`codec.lyra`).  Both stacks are
causal and keep per-layer state, so offline processing is a stream from a zero state and any
chunking into whole frames gives the same result.

Encoder: conv 1 -> 64 (kernel 64, stride 16), then three blocks of residual units and a
strided conv (64 -> 128 by 5, 128 -> 256 by 2, 256 -> 512 by 2), leaky ReLU, conv 512 -> 64.
Decoder: conv 64 -> 512, then three blocks of a transposed conv (512 -> 256 by 2, 256 -> 128
by 2, 128 -> 64 by 5) and residual units, leaky ReLU, transposed conv 64 -> 1 (by 16).
The decoder has no lookahead: a frame's 320 samples come out with its embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from codec.modules.conv import StreamState
from codec.modules.soundstream import (
    CausalConv,
    CausalConvTranspose,
    HistoryState,
    OverlapState,
    ResidualStack,
    UnitState,
    _leaky,
)

HOP_LENGTH = 320
LATENT_DIM = 64
# (channels in, channels out, stride, groups) of each resampling block, encoder order.
_BLOCKS = ((64, 128, 5, 1), (128, 256, 2, 2), (256, 512, 2, 4))
_WIDTH = 64  # channels per group of the grouped pointwise and bottleneck convs


@dataclass
class LyraEncoderState(StreamState):
    first: HistoryState
    units: list[list[UnitState]]
    down: list[HistoryState]
    bottleneck: HistoryState


@dataclass
class HeldBack(StreamState):
    """Samples a decoder holds back until the next frame: none here (``[N, 0]``).

    Kept so that streams treat every decoder alike (a flush returns the held-back tail).
    """

    tail: torch.Tensor


@dataclass
class LyraDecoderState(StreamState):
    bottleneck: HistoryState
    up: list[OverlapState]
    units: list[list[UnitState]]
    last: OverlapState
    head: HeldBack


class LyraEncoder(nn.Module):
    """Waveform ``[N, F * 320]`` -> embedding ``[N, F, 64]`` (channels last, like our encoders)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = CausalConv(1, 64, 64, stride=16)
        self.stacks = nn.ModuleList(ResidualStack(c, c // _WIDTH) for c, _, _, _ in _BLOCKS)
        self.down = nn.ModuleList(CausalConv(c, o, 2 * s, stride=s, groups=g) for c, o, s, g in _BLOCKS)
        self.bottleneck = CausalConv(512, LATENT_DIM, 3, groups=512 // (2 * _WIDTH))

    def conv_layers(self) -> list[nn.Module]:
        """Every conv in the order the signal meets them (the TFLite graph's op order)."""
        order: list[nn.Module] = [self.first]
        for stack, down in zip(self.stacks, self.down, strict=True):
            for u in stack.units:
                order += [u.depthwise, u.pointwise_a, u.pointwise_b]
            order.append(down)
        return [*order, self.bottleneck]

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> LyraEncoderState:
        args = (batch_size, device, dtype)
        return LyraEncoderState(
            self.first.init_state(*args),
            [s.init_state(*args) for s in self.stacks],
            [d.init_state(*args) for d in self.down],
            self.bottleneck.init_state(*args),
        )

    def forward(
        self, wav: torch.Tensor, state: LyraEncoderState | None = None, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: wav ``[N, F * 320]``; frame_mask unused (causal). Returns ``[N, F, 64]``."""
        s = state
        x = self.first(wav[:, None], None if s is None else s.first)
        for i, (stack, down) in enumerate(zip(self.stacks, self.down, strict=True)):
            x = stack(x, None if s is None else s.units[i])
            x = down(_leaky(x), None if s is None else s.down[i])
        x = self.bottleneck(_leaky(x), None if s is None else s.bottleneck)
        return x.transpose(1, 2)


class LyraDecoder(nn.Module):
    """Embedding ``[N, F, 64]`` -> waveform ``[N, F * 320]``, no lookahead."""

    delay = 0

    def __init__(self) -> None:
        super().__init__()
        self.bottleneck = CausalConv(LATENT_DIM, 512, 3, groups=512 // (2 * _WIDTH))
        up = tuple(reversed(_BLOCKS))
        self.up = nn.ModuleList(CausalConvTranspose(o, c, 2 * s, s, groups=g) for c, o, s, g in up)
        self.stacks = nn.ModuleList(ResidualStack(c, c // _WIDTH) for c, _, _, _ in up)
        self.last = CausalConvTranspose(64, 1, 64, 16)

    def conv_layers(self) -> list[nn.Module]:
        """Every conv in the order the signal meets them (the TFLite graph's op order)."""
        order: list[nn.Module] = [self.bottleneck]
        for up, stack in zip(self.up, self.stacks, strict=True):
            order.append(up)
            for u in stack.units:
                order += [u.depthwise, u.pointwise_a, u.pointwise_b]
        return [*order, self.last]

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> LyraDecoderState:
        args = (batch_size, device, dtype)
        return LyraDecoderState(
            self.bottleneck.init_state(*args),
            [u.init_state(*args) for u in self.up],
            [s.init_state(*args) for s in self.stacks],
            self.last.init_state(*args),
            HeldBack(torch.zeros(batch_size, 0, device=device, dtype=dtype)),
        )

    def forward(
        self, latent: torch.Tensor, state: LyraDecoderState, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: latent ``[N, F, 64]``; state updated in place. Returns ``[N, F * 320]``."""
        x = self.bottleneck(latent.transpose(1, 2), state.bottleneck)
        for i, (up, stack) in enumerate(zip(self.up, self.stacks, strict=True)):
            x = stack(up(_leaky(x), state.up[i]), state.units[i])
        return self.last(_leaky(x), state.last)[:, 0]
