"""Convolutions over frame sequences (channels last), with per-layer streaming state.

All padding arithmetic lives here.  A causal depthwise conv of kernel ``k`` sees the current
frame and the ``k - 1`` frames before it::

    state (k-1 past frames)      new input (f frames)
    |<------------------>|<----------------------->|
    [ x_{-k+1} ... x_{-1} | x_0   x_1  ...  x_{f-1} ]
              \\______ kernel ______/
                               -> y_0 ... y_{f-1}   (f outputs, no future frame used)

The state is not the past input but the partial sums of the next ``k - 1`` outputs (the taps
already applied to the inputs that have arrived): a new frame is then one multiply-add into
them, and the oldest slot is complete.  Offline, the state starts as zeros, which is exactly
left zero padding, so any chunking gives the same output.
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
    """Base of all per-layer states: tensors with the batch dimension first.

    Layers write their state in place (``copy_``) and never replace its tensors, so a stream's
    state keeps its memory from the first step to the last and a CUDA graph of a step can be
    replayed on it.
    """

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
    """Partial sums of a causal conv's next ``kernel_size - 1`` outputs, ``[B, k - 1, C]``.

    Slot ``u`` holds the taps already applied to output ``t + u`` (``t``: the next frame to
    come), from inputs that have arrived; a zero state is a stream start (left zero padding).
    """

    partial: torch.Tensor


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
        self._taps_key: tuple[int, int, torch.device, torch.dtype] | None = None
        self._taps_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ConvState:
        return ConvState(
            torch.zeros(batch_size, self.kernel_size - 1, self.weight.shape[0], device=device, dtype=dtype)
        )

    def _taps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(taps [k, C], reversed taps [k, C])``, rebuilt only when the weight changes."""
        w = self.weight
        key = (w._version, w.data_ptr(), w.device, w.dtype)
        if key != self._taps_key:
            with torch.no_grad():
                taps = w.detach().t().contiguous()
                self._taps_cache = (taps, taps.flip(0).contiguous())
            self._taps_key = key
        return self._taps_cache

    def forward(self, x: torch.Tensor, state: ConvState | None = None) -> torch.Tensor:
        """Args: x ``[B, F, C]``; state: written in place (causal only). Returns ``[B, F, C]``."""
        k = self.kernel_size
        if self.training and torch.is_grad_enabled():
            # Training: the library conv is fastest on large batches.
            left = k - 1 if self.causal else (k - 1) // 2
            xp = F.pad(x, (0, 0, left, k - 1 - left)).transpose(1, 2)
            return F.conv1d(xp, self.weight[:, None], self.bias, groups=x.shape[-1]).transpose(1, 2)
        if not self.causal:
            # Centred: the causal sums over the input padded on both sides, read k - 1 later.
            left = (k - 1) // 2
            y = self._accumulate(F.pad(x, (0, 0, left, k - 1 - left)), None)
            return torch.add(y[:, k - 1 : k - 1 + x.shape[1]], self.bias)
        y = self._accumulate(x, None if state is None else state.partial)
        f = x.shape[1]
        if state is not None:
            # Written into, never replaced: a captured CUDA graph replays on the same buffers.
            state.partial.copy_(y[:, f:])
        return torch.add(y[:, :f], self.bias)

    def _accumulate(self, x: torch.Tensor, partial: torch.Tensor | None) -> torch.Tensor:
        """Causal sums ``[B, F + k - 1, C]``: slots ``< F`` are complete outputs (without the
        bias), the last ``k - 1`` the partial sums of the outputs still waiting for inputs.

        Inference only uses elementwise multiply-adds, applied tap by tap in a fixed order
        (tap 0, the oldest input, first): every output gets the same arithmetic whatever the
        chunk length or batch size, so streamed and batched results equal offline ones bit for
        bit (the library conv and reductions change their summation order with the shape).
        One frame at a time this is a single multiply-add into the carried partial sums.
        """
        b, f, c = x.shape
        k = self.kernel_size
        taps, reversed_taps = self._taps()
        if taps.dtype != x.dtype:
            taps, reversed_taps = taps.to(x.dtype), reversed_taps.to(x.dtype)
        y = x.new_zeros(b, f + k - 1, c) if partial is None else F.pad(partial, (0, 0, 0, f))
        if f == 1:
            # The new input meets tap k - 1 - u in slot u; slot 0 is then complete.
            return y.addcmul_(x, reversed_taps)
        for j in range(k):
            # Tap j carries input i to output i + (k - 1) - j.
            y[:, k - 1 - j : k - 1 - j + f].addcmul_(x, taps[j])
        return y
