"""Frame-rate changes inside a trunk: causal strided pooling and its transpose, channels last.

Both layers act on non-overlapping groups of ``stride`` fine frames (kernel = stride), so
neither looks across a group boundary and neither carries streaming state::

    fine frames    | f0  f1  f2  f3 | f4  f5  f6  f7 | ...     (stride 4)
    frames         |       F0       |       F1       | ...

:class:`FramePool` (encoder) turns fine frames ``4t .. 4t+3`` into frame ``t``: it is ready when
its own group has arrived, so downsampling adds no lookahead.  :class:`FrameUnpool` (decoder)
turns frame ``t`` into fine frames ``4t .. 4t+3`` from frame ``t`` alone.  Mixing across group
boundaries is left to the causal ConvNeXt blocks on either side, which carry the state.
A stream always hands these layers whole groups (the model's hop is one group), so any
chunking of the input gives the offline result.

Each layer is one matrix product over a group (a strided convolution with kernel = stride,
or a transposed one), written with :class:`codec.modules.linear.Linear` so that every frame
takes the same kernel path as the rest of the trunk.
"""

from __future__ import annotations

import torch
from torch import nn

from codec.modules.linear import Linear


class FramePool(nn.Module):
    """Learned pooling: ``[B, F * stride, in_dim]`` -> ``[B, F, out_dim]``.

    Args:
        in_dim: channels of the fine frames.
        out_dim: channels of the pooled frames.
        stride: fine frames per pooled frame.
    """

    def __init__(self, in_dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride = stride
        self.proj = Linear(stride * in_dim, out_dim)
        with torch.no_grad():
            # Start as the group mean (plus the random init): the pooled frame begins as a
            # summary of its group rather than a random mix, which speeds up early training.
            self.proj.weight.mul_(0.5).add_(torch.eye(in_dim, out_dim).repeat(stride, 1) / stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[B, F * stride, in_dim]``. Returns ``[B, F, out_dim]``."""
        b, n, c = x.shape
        if n % self.stride:
            raise ValueError(f"{n} fine frames are not a whole number of groups of {self.stride}")
        return self.proj(x.reshape(b, n // self.stride, self.stride * c))


class FrameUnpool(nn.Module):
    """Learned upsampling (transposed strided conv): ``[B, F, in_dim]`` -> ``[B, F * stride, out_dim]``.

    Args:
        in_dim: channels of the frames.
        out_dim: channels of the fine frames.
        stride: fine frames per frame.
    """

    def __init__(self, in_dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride, self.out_dim = stride, out_dim
        self.proj = Linear(in_dim, stride * out_dim)
        with torch.no_grad():
            # Start close to repeating the frame (plus the random init), for the same reason.
            self.proj.weight.mul_(0.5).add_(torch.eye(in_dim, out_dim).repeat(1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[B, F, in_dim]``. Returns ``[B, F * stride, out_dim]``."""
        b, f, _ = x.shape
        return self.proj(x).reshape(b, f * self.stride, self.out_dim)


def repeat_mask(frame_mask: torch.Tensor | None, stride: int) -> torch.Tensor | None:
    """A frame mask ``[B, F, 1]`` at the fine rate ``[B, F * stride, 1]`` (None stays None)."""
    if frame_mask is None or stride == 1:
        return frame_mask
    return frame_mask.repeat_interleave(stride, dim=1)
