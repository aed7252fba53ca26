"""Seamless resampling of a signal that arrives in blocks (equal to resampling the whole).

torchaudio has no streaming resampler, so :class:`BlockResampler` reuses
``torchaudio.functional.resample`` on a window that keeps enough context.  With the rates
reduced to ``orig : new`` (:func:`codec.audio.resample_ratio`, which bounds the filter's size
whatever the rates), output group ``g`` (``new`` samples) reads input samples
``[g * orig - width, (g + 1) * orig + width)``.  A group is emitted once its right context has
arrived, computed on a buffer that starts a whole number of groups (at least ``width``
samples) before it, so the sinc kernel lines up with the whole-signal computation.  The
result matches :func:`codec.audio.resample` of the whole signal to float precision (the same
products, summed by a convolution over a different length), and has its exact length
``ceil(n * new_sr / orig_sr)``.
"""

from __future__ import annotations

import math

import torch
import torchaudio.functional as AF

from codec.audio import resample_ratio, resampled_length

# torchaudio.functional.resample's defaults, which codec.audio.resample uses.
_LOWPASS_WIDTH, _ROLLOFF = 6, 0.99


class BlockResampler:
    """Resamples blocks ``[C, n]`` from ``orig_sr`` to ``new_sr``; see the module docstring.

    Args: orig_sr, new_sr: input and output rates in Hz; channels: C of the blocks.
    """

    def __init__(self, orig_sr: int, new_sr: int, channels: int = 1) -> None:
        self.orig_sr, self.new_sr, self.channels = orig_sr, new_sr, channels
        self.orig, self.new = resample_ratio(orig_sr, new_sr)
        self.width = math.ceil(_LOWPASS_WIDTH * self.orig / (min(self.orig, self.new) * _ROLLOFF))
        self._context_groups = -(-self.width // self.orig) + 1
        self._buf: torch.Tensor | None = None
        self._buf_group = 0  # group index where the buffer starts
        self._next = 0  # next output group to emit
        self._total = 0  # input samples received
        self._emitted = 0  # output samples returned

    def push(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[C, n]``. Returns ``[C, m]``, the output samples that are now final."""
        self._buf = x if self._buf is None else torch.cat([self._buf, x], dim=-1)
        self._total += x.shape[-1]
        ready = (self._total - self.orig - self.width) // self.orig + 1
        return self._count(self._emit(ready))

    def finish(self) -> torch.Tensor:
        """End of input: ``[C, m]``, the rest of the output (total ``ceil(n * new_sr / orig_sr)``)."""
        out = self._emit(None)
        # An approximated ratio (see resample_ratio) may end a few samples off the exact length.
        want = int(resampled_length(self._total, self.orig_sr, self.new_sr)) - self._emitted
        if out.shape[-1] < want:
            out = torch.nn.functional.pad(out, (0, want - out.shape[-1]))
        return self._count(out[:, : max(0, want)])

    def _count(self, out: torch.Tensor) -> torch.Tensor:
        self._emitted += out.shape[-1]
        return out

    def _emit(self, end_group: int | None) -> torch.Tensor:
        if self._buf is None:
            return torch.zeros(self.channels, 0)
        if end_group is not None and end_group <= self._next:
            return self._buf[:, :0]
        y = AF.resample(self._buf, self.orig, self.new)
        first = (self._next - self._buf_group) * self.new
        if end_group is None:
            out, self._next = y[:, first:], self._next + -(-(y.shape[-1] - first) // self.new)
        else:
            out, self._next = y[:, first : (end_group - self._buf_group) * self.new], end_group
        start = max(0, self._next - self._context_groups)
        self._buf = self._buf[:, (start - self._buf_group) * self.orig :]
        self._buf_group = start
        return out
