"""Convolutions over frame sequences (channels last), with per-layer streaming state.

All padding arithmetic lives here.  A causal depthwise conv of kernel ``k`` sees the current
frame and the ``k - 1`` frames before it::

    state (k-1 past frames)      new input (f frames)
    |<------------------>|<----------------------->|
    [ x_{-k+1} ... x_{-1} | x_0   x_1  ...  x_{f-1} ]
              \\______ kernel ______/
                               -> y_0 ... y_{f-1}   (f outputs, no future frame used)

Offline, the state starts as zeros, which is exactly left zero padding; streaming carries the
last ``k - 1`` input frames from one call to the next, so any chunking gives the same output.
A non-causal conv pads ``(k - 1) // 2`` zeros on each side and cannot stream.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class StreamState:
    """Base of all per-layer states: tensors with the batch dimension first."""

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Zero the state of every item (``mask=None``) or of the items where ``mask`` is True."""
        reset_state(self, mask)


def reset_state(state: object, mask: torch.Tensor | None = None) -> None:
    """Zero every tensor in a (nested) state, for all items or only where ``mask [B]`` is True."""
    if isinstance(state, torch.Tensor):
        if mask is None:
            state.zero_()
        else:
            state[mask.to(state.device)] = 0
    elif dataclasses.is_dataclass(state):
        for f in dataclasses.fields(state):
            reset_state(getattr(state, f.name), mask)
    elif isinstance(state, list | tuple):
        for s in state:
            reset_state(s, mask)


@dataclass
class ConvState(StreamState):
    """Input tail of a causal conv: the last ``kernel_size - 1`` frames, ``[B, k - 1, C]``."""

    tail: torch.Tensor


class FrameConv1d(nn.Module):
    """Depthwise 1-D convolution over frames, channels last, causal (streamable) or centred.

    Args:
        channels: input and output channels (depthwise: one filter per channel).
        kernel_size: frames seen per output frame.
        causal: pad on the left only (and allow streaming) instead of both sides.
    """

    def __init__(self, channels: int, kernel_size: int, causal: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, kernel_size) / kernel_size**0.5)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.causal = causal
        self.kernel_size = kernel_size

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ConvState:
        return ConvState(
            torch.zeros(batch_size, self.kernel_size - 1, self.weight.shape[0], device=device, dtype=dtype)
        )

    def forward(self, x: torch.Tensor, state: ConvState | None = None) -> torch.Tensor:
        """Args: x ``[B, F, C]``; state: updated in place (causal only). Returns ``[B, F, C]``."""
        k = self.kernel_size
        if not self.causal:
            left = (k - 1) // 2
            x = F.pad(x, (0, 0, left, k - 1 - left))
        elif state is None:
            x = F.pad(x, (0, 0, k - 1, 0))
        else:
            x = torch.cat([state.tail, x], dim=1)
            if k > 1:
                state.tail = x[:, x.shape[1] - (k - 1) :].clone()
        if self.training and torch.is_grad_enabled():
            # Training: the library conv is fastest on large batches.
            out = F.conv1d(x.transpose(1, 2), self.weight[:, None], self.bias, groups=x.shape[-1])
            return out.transpose(1, 2)
        # Inference: one multiply-add per tap, in a fixed order.  Only elementwise ops, so every
        # output frame gets the same arithmetic whatever the chunk length or batch size: streamed
        # and batched codes equal offline codes bit for bit (the library conv and reductions
        # change their summation order with the input shape).
        f = x.shape[1] - (k - 1)
        taps = self.weight.t()
        y = torch.addcmul(self.bias, x[:, :f], taps[0])
        for j in range(1, k):
            y.addcmul_(x[:, j : j + f], taps[j])
        return y
