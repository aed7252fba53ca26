"""ConvNeXt blocks at the frame rate: the trunk of both encoder and decoder.

A block is depthwise conv (time mixing) -> LayerNorm -> Linear -> GELU -> Linear (channel
mixing) -> layer scale, with a residual connection.  Only the depthwise conv looks across
frames, so it alone carries streaming state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from codec.modules.conv import ConvState, FrameConv1d, StreamState
from codec.modules.linear import Linear
from codec.modules.pointwise import same_everywhere


@dataclass
class TrunkState(StreamState):
    """One :class:`ConvState` per block."""

    layers: list[ConvState]


def _gelu(x: torch.Tensor) -> torch.Tensor:
    # The tanh form the models are trained with (the erf form would change every output).
    return F.gelu(x, approximate="tanh")


class ConvNeXtBlock(nn.Module):
    """Args: dim: channels; intermediate_dim: MLP width; kernel_size: frames mixed; causal."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, causal: bool) -> None:
        super().__init__()
        self.dwconv = FrameConv1d(dim, kernel_size, causal)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = Linear(dim, intermediate_dim)
        self.pwconv2 = Linear(intermediate_dim, dim)
        # Small layer scale keeps a deep stack close to identity at init (ConvNeXt).
        self.gamma = nn.Parameter(torch.full((dim,), 1.0 / 8))

    def forward(self, x: torch.Tensor, state: ConvState | None = None) -> torch.Tensor:
        """Args: x ``[B, F, dim]`` (channels last). Returns ``[B, F, dim]``."""
        # Written with functional ops rather than sub-module calls: at one frame per call the
        # per-call Python overhead is a large share of the streaming budget.
        b, f, d = x.shape
        h = F.layer_norm(self.dwconv(x, state), (d,), self.norm.weight, self.norm.bias, self.norm.eps)
        h = torch.addmm(self.pwconv1.bias, h.reshape(b * f, d), self.pwconv1.weight)
        h = torch.addmm(self.pwconv2.bias, same_everywhere(_gelu, h), self.pwconv2.weight)
        return torch.addcmul(x, self.gamma, h.reshape(b, f, d))


class ConvNeXtTrunk(nn.Module):
    """A stack of :class:`ConvNeXtBlock` with a final LayerNorm; channels-last ``[B, F, dim]``."""

    def __init__(
        self, dim: int, intermediate_dim: int, num_layers: int, kernel_size: int, causal: bool
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, intermediate_dim, kernel_size, causal) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> TrunkState:
        return TrunkState([b.dwconv.init_state(batch_size, device, dtype) for b in self.blocks])

    def forward(
        self, x: torch.Tensor, state: TrunkState | None = None, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args:
            x: ``[B, F, dim]``.
            state: streaming state (causal only), updated in place.
            frame_mask: ``[B, F, 1]`` 1 for valid frames; used by non-causal models so that
                padding frames read as zeros, as they would for the item alone.
        Returns: ``[B, F, dim]``.
        """
        for i, block in enumerate(self.blocks):
            if frame_mask is not None:
                x = x * frame_mask
            x = block(x, None if state is None else state.layers[i])
        return self.norm(x)
