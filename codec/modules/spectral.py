"""Causal STFT front end (encoder) and iSTFT head (decoder), both with streaming state.

Frames are ``hop`` samples; windows are ``n_fft = 2 * hop`` samples with a periodic Hann
window, which sums to exactly one at 50% overlap.  Frame ``t`` covers input samples
``[(t - 1) * hop, (t + 1) * hop)``::

    samples   | block t-1 | block t  | block t+1 |
    frame t   |<------ window ------>|
    frame t+1             |<------ window ------>|

Analysis (encoder): frame ``t`` needs samples up to ``(t + 1) * hop``, so it is ready as soon
as its own block has arrived (no lookahead).  The state is the previous block.

Synthesis (decoder): block ``t`` of the output is the overlap-add of the second half of frame
``t`` and the first half of frame ``t + 1``.  It is therefore final only once frame ``t + 1``
is decoded: the decoder's lookahead is one frame (``hop`` samples).  The state is the second
half of the last frame.  A stream emits ``hop`` samples per frame, delayed by ``hop``;
offline decoding is the same stream followed by a flush, with the first ``hop`` samples
(the pre-roll before time zero) dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from codec.modules.conv import StreamState
from codec.modules.linear import Linear

# Power-law compression of the complex spectrum: keeps quiet bins visible to the network.
_COMPRESSION = 0.3
_EPS = 1e-5


@dataclass
class SampleTailState(StreamState):
    """The last ``hop`` samples seen (analysis) or the pending overlap (synthesis): ``[B, hop]``."""

    tail: torch.Tensor


def _window(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float32)


class STFTFrontend(nn.Module):
    """Waveform ``[B, T]`` (``T`` a multiple of ``hop``) -> features ``[B, F, out_dim]``.

    Features per bin: real and imaginary parts of the power-compressed spectrum and the log
    magnitude, followed by a linear projection to ``out_dim``.
    """

    def __init__(self, hop_length: int, out_dim: int) -> None:
        super().__init__()
        self.hop = hop_length
        self.n_fft = 2 * hop_length
        self.register_buffer("window", _window(self.n_fft), persistent=False)
        bins = self.n_fft // 2 + 1
        self.proj = Linear(3 * bins, out_dim)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> SampleTailState:
        return SampleTailState(torch.zeros(batch_size, self.hop, device=device, dtype=dtype))

    def forward(self, wav: torch.Tensor, state: SampleTailState | None = None) -> torch.Tensor:
        """Args: wav ``[B, T]``, T = F * hop. Returns features ``[B, F, out_dim]``."""
        if state is None:
            prev = wav.new_zeros(wav.shape[0], self.hop)
        else:
            prev = state.tail
            state.tail = wav[:, -self.hop :].clone()
        x = torch.cat([prev, wav], dim=-1)
        frames = x.unfold(-1, self.n_fft, self.hop)  # [B, F, n_fft]
        spec = torch.fft.rfft(frames * self.window)
        mag = spec.abs()
        comp = spec * (mag + _EPS).pow(_COMPRESSION - 1.0)
        feats = torch.cat([comp.real, comp.imag, torch.log(mag + _EPS)], dim=-1)
        return self.proj(feats)


class ISTFTHead(nn.Module):
    """Features ``[B, F, dim]`` -> waveform blocks ``[B, F * hop]`` (delayed by ``hop``).

    Predicts a log-magnitude and a phase per bin (Vocos-style), inverts each frame with an
    inverse real FFT, windows it and overlap-adds it with the carried tail.
    """

    def __init__(self, dim: int, hop_length: int) -> None:
        super().__init__()
        self.hop = hop_length
        self.n_fft = 2 * hop_length
        self.bins = self.n_fft // 2 + 1
        self.register_buffer("window", _window(self.n_fft), persistent=False)
        self.proj = Linear(dim, 2 * self.bins)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> SampleTailState:
        return SampleTailState(torch.zeros(batch_size, self.hop, device=device, dtype=dtype))

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Windowed time-domain frames ``[B, F, n_fft]`` from features ``[B, F, dim]``."""
        logmag, phase = self.proj(x).float().split(self.bins, dim=-1)
        # Clamp keeps exp() finite early in training; 1e2 is far above speech levels.
        mag = torch.exp(logmag).clamp(max=1e2)
        spec = torch.polar(mag, phase)
        return torch.fft.irfft(spec, n=self.n_fft) * self.window

    def forward(
        self, x: torch.Tensor, state: SampleTailState, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: x ``[B, F, dim]``; state updated in place; frame_mask ``[B, F, 1]`` zeroes the
        frames past each item's end, so a padded item overlap-adds exactly as it would alone.

        Returns ``[B, F * hop]``: output block ``j`` of this call is input-time block
        ``t0 + j - 1`` (``t0``: first frame of the call), i.e. the stream lags by ``hop`` samples.
        """
        frames = self.frames(x)
        if frame_mask is not None:
            frames = frames * frame_mask
        h = self.hop
        first, second = frames[..., :h], frames[..., h:]
        prev = torch.cat([state.tail[:, None].to(frames.dtype), second[:, :-1]], dim=1)
        state.tail = second[:, -1].clone()
        return (first + prev).flatten(1)
