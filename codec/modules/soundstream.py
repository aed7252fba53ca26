"""Sample-rate convolution stacks of the SoundStream family, with per-layer streaming state.

These are the layers of Lyra v2's encoder (SoundStream) and decoder (LyraGAN): causal strided
convolutions, causal transposed convolutions, and residual units (leaky ReLU, dilated
depthwise conv, two pointwise convs).  Channels first, ``[B, C, T]``.

A causal conv of kernel ``k``, dilation ``d`` and stride ``s`` keeps the last
``h = (k - 1) * d + 1 - s`` input samples; each call sees them before its own input, so
``T`` new samples (a multiple of ``s``) give ``T / s`` outputs, the same ones in any chunking::

    history (h samples)   new input (T samples)
    [ x_{-h} ... x_{-1} | x_0 ... x_{T-1} ]  -> conv (valid) -> T / s outputs

A causal transposed conv (kernel ``k``, stride ``s``, ``k >= s``) spreads each input over
``k`` outputs; the last ``k - s`` of a call are not complete until the next input arrives, so
they are carried (without the bias) and added to the next call's first outputs::

    this call:  y_0 ... y_{T*s-1} | tail (k - s)      -> emit T * s samples (+ bias)
    next call:  tail + y'_0 ...                        (the tail is the overlap)

A zero state is a stream start, so offline processing is a stream from a zero state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from codec.modules.conv import StreamState

LEAKY_SLOPE = 0.3  # Lyra v2's leaky ReLU slope


@dataclass
class HistoryState(StreamState):
    """The last input samples a causal conv needs, ``[B, C_in, h]``."""

    history: torch.Tensor


@dataclass
class OverlapState(StreamState):
    """The incomplete outputs of a causal transposed conv, without bias, ``[B, C_out, k - s]``."""

    overlap: torch.Tensor


@dataclass
class UnitState(StreamState):
    """A residual unit's depthwise-conv history."""

    depthwise: HistoryState


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class CausalConv(nn.Module):
    """Causal 1-D conv with stride, dilation and groups (``groups == channels``: depthwise).

    Args: in_channels, out_channels, kernel_size, stride, dilation, groups.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride, self.dilation, self.groups = stride, dilation, groups
        self.history = (kernel_size - 1) * dilation + 1 - stride
        if self.history < 0:
            raise ValueError(f"stride {stride} skips samples of kernel {kernel_size} x dilation {dilation}")

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> HistoryState:
        c = self.weight.shape[1] * self.groups
        return HistoryState(torch.zeros(batch_size, c, self.history, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, state: HistoryState | None = None) -> torch.Tensor:
        """Args: x ``[B, C_in, T]`` (``T`` a multiple of the stride). Returns ``[B, C_out, T / s]``."""
        past = x.new_zeros(x.shape[0], x.shape[1], self.history) if state is None else state.history
        xp = torch.cat([past, x], dim=-1)
        if state is not None and self.history:
            # Written into, never replaced: the state keeps its memory for the whole stream.
            state.history.copy_(xp[..., xp.shape[-1] - self.history :])
        return F.conv1d(xp, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class CausalConvTranspose(nn.Module):
    """Causal 1-D transposed conv (upsampling by ``stride``), overlap carried between calls.

    Args: in_channels, out_channels, kernel_size (``>= stride``), stride, groups.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int = 1):
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel {kernel_size} shorter than stride {stride} leaves gaps")
        self.weight = nn.Parameter(torch.zeros(in_channels, out_channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride, self.groups, self.overlap = stride, groups, kernel_size - stride

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> OverlapState:
        c = self.weight.shape[1] * self.groups
        return OverlapState(torch.zeros(batch_size, c, self.overlap, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, state: OverlapState | None = None) -> torch.Tensor:
        """Args: x ``[B, C_in, T]``. Returns ``[B, C_out, T * stride]``; the tail waits in ``state``."""
        y = F.conv_transpose1d(x, self.weight, None, self.stride, groups=self.groups)
        n = x.shape[-1] * self.stride
        if state is not None and self.overlap:
            y = torch.cat([y[..., : self.overlap] + state.overlap, y[..., self.overlap :]], dim=-1)
            state.overlap.copy_(y[..., n:])
        return y[..., :n] + self.bias[:, None]


class ResidualUnit(nn.Module):
    """``x + pointwise_b(leaky(pointwise_a(depthwise(leaky(x)))))``; the depthwise conv is
    dilated and causal, ``pointwise_b`` grouped by ``groups``.

    Args: channels, dilation, groups (of the second pointwise conv).
    """

    def __init__(self, channels: int, dilation: int, groups: int) -> None:
        super().__init__()
        self.depthwise = CausalConv(channels, channels, 3, dilation=dilation, groups=channels)
        self.pointwise_a = CausalConv(channels, channels, 1)
        self.pointwise_b = CausalConv(channels, channels, 1, groups=groups)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> UnitState:
        return UnitState(self.depthwise.init_state(batch_size, device, dtype))

    def forward(self, x: torch.Tensor, state: UnitState | None = None) -> torch.Tensor:
        """Args: x ``[B, C, T]``. Returns ``[B, C, T]``."""
        h = self.depthwise(_leaky(x), None if state is None else state.depthwise)
        return x + self.pointwise_b(_leaky(self.pointwise_a(h)))


class ResidualStack(nn.Module):
    """Residual units of dilation 1, 3 and 9 (a receptive field of 27 steps at this rate)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.units = nn.ModuleList(ResidualUnit(channels, d, groups) for d in (1, 3, 9))

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> list[UnitState]:
        return [u.init_state(batch_size, device, dtype) for u in self.units]

    def forward(self, x: torch.Tensor, state: list[UnitState] | None = None) -> torch.Tensor:
        for i, unit in enumerate(self.units):
            x = unit(x, None if state is None else state[i])
        return x
