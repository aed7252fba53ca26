"""Causal STFT front end (encoder) and iSTFT head (decoder), both with streaming state.

Frames are ``hop`` samples (the layer's own: a trunk with a rate change runs the front end
and head at a finer hop than the model's, see :mod:`codec.model`); windows are
``n_fft = 2 * hop`` samples with a periodic Hann window, which sums to exactly one at 50%
overlap.  Frame ``t`` covers input samples
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
from codec.modules.pointwise import same_everywhere

# Power-law compression of the complex spectrum: keeps quiet bins visible to the network.
_COMPRESSION = 0.3
_EPS = 1e-5


def _compression(mag: torch.Tensor) -> torch.Tensor:
    # Through same_everywhere: pow's vector and scalar CPU code differ in the last bit.
    return (mag + _EPS).pow(_COMPRESSION - 1.0)


@dataclass
class SampleTailState(StreamState):
    """The last ``hop`` samples seen (analysis) or the pending overlap (synthesis): ``[B, hop]``."""

    tail: torch.Tensor


@dataclass
class HeadState(SampleTailState):
    """Synthesis state: ``tail`` the pending overlap of the next output block ``[B, hop]``,
    ``beyond`` the partial sums of the blocks after it (``None`` unless the window reaches past
    the next block)."""

    beyond: torch.Tensor | None = None


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
        prev = wav.new_zeros(wav.shape[0], self.hop) if state is None else state.tail
        x = torch.cat([prev, wav], dim=-1)
        if state is not None:
            state.tail.copy_(wav[:, -self.hop :])  # in place (see StreamState)
        frames = x.unfold(-1, self.n_fft, self.hop)  # [B, F, n_fft]
        spec = torch.fft.rfft(frames * self.window)
        mag = spec.abs()
        comp = spec * same_everywhere(_compression, mag)
        feats = torch.cat([comp.real, comp.imag, torch.log(mag + _EPS)], dim=-1)
        return self.proj(feats)


class ISTFTHead(nn.Module):
    """Features ``[B, F, dim]`` -> waveform blocks ``[B, F * hop]`` (delayed by ``hop``).

    Each frame's feature vector is turned into ``upsample`` short synthesis windows on a grid
    ``upsample`` times finer than the frame rate (sub-hop ``s = hop / upsample``, window
    ``n = (upsample + 1) * s``), which overlap-add into one ``2 * hop`` span per frame::

        span of frame t    |<---------------- 2 * hop ---------------->|
        upsample = 1       |<================ window =================>|
        upsample = 4       |<=== window 0 ===>|
                           | s |<=== window 1 ===>|
                           | s | s |<=== window 2 ===>|
                           | s | s | s |<=== window 3 ===>|

    so every span still covers input blocks ``t - 1`` and ``t`` and the lookahead stays one
    frame.  A longer ``window`` (a multiple of ``s``, e.g. ``4 * s``: 75% overlap at
    ``upsample = 2``) lets each window reach past the span's end into block ``t + 1``::

        upsample = 2, window = 4 * s
                           |<======= window 0 ======>|
                           | s |<======= window 1 ======>|
                           |<- block t-1 ->|<- block t ->|<- t+1 ...

    Block ``t - 1`` is still final once frame ``t`` is decoded (the windows of later frames
    start at block ``t``), so the lookahead stays one frame; the state then also holds the
    partial sums of the blocks after the next one.  Windows are periodic Hann, scaled so that
    they sum to one on the fine grid.

    Args:
        dim: feature width.
        hop_length: samples per frame.
        kind: ``"polar"`` predicts a log-magnitude and a phase per bin and inverts them with an
            inverse real FFT (Vocos-style); ``"waveform"`` predicts each window's samples directly
            with one linear layer (WaveNeXt-style, no phase to wrap).
        upsample: synthesis windows per frame (divides ``hop_length``).
        window: synthesis window length in samples, a multiple of the sub-hop ``s`` and at least
            ``(upsample + 1) * s`` (the default).
    """

    def __init__(
        self, dim: int, hop_length: int, kind: str = "polar", upsample: int = 1, window: int | None = None
    ) -> None:
        super().__init__()
        if kind not in ("polar", "waveform"):
            raise ValueError(f"head kind must be 'polar' or 'waveform', got {kind!r}")
        if upsample < 1 or hop_length % upsample:
            raise ValueError(f"head upsample {upsample} must divide hop_length {hop_length}")
        self.hop, self.kind, self.upsample = hop_length, kind, upsample
        self.sub_hop = hop_length // upsample
        self.n_fft = (upsample + 1) * self.sub_hop if window is None else window
        if self.n_fft % self.sub_hop or self.n_fft < (upsample + 1) * self.sub_hop:
            raise ValueError(
                f"head window {self.n_fft} must be a multiple of the sub-hop {self.sub_hop} "
                f"and at least {(upsample + 1) * self.sub_hop}"
            )
        # One frame's overlap-added span, and the whole blocks it touches (2 for the default window).
        self.span = (upsample - 1) * self.sub_hop + self.n_fft
        self.blocks = -(-self.span // hop_length)
        self.bins = self.n_fft // 2 + 1
        # A periodic Hann window sums to n / (2 * s) at hop s: scale it to sum to one.
        window = _window(self.n_fft) * (2 * self.sub_hop / self.n_fft)
        self.register_buffer("window", window, persistent=False)
        per_window = 2 * self.bins if kind == "polar" else self.n_fft
        self.proj = Linear(dim, upsample * per_window)

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> HeadState:
        # float32 whatever the model's dtype: the frames are synthesised in float32.
        def zeros(n: int) -> torch.Tensor:
            return torch.zeros(batch_size, n, device=device, dtype=torch.float32)

        return HeadState(zeros(self.hop), zeros((self.blocks - 2) * self.hop) if self.blocks > 2 else None)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Windowed time-domain spans ``[B, F, span]`` from features ``[B, F, dim]``."""
        b, f, _ = x.shape
        y = self.proj(x).float().reshape(b, f, self.upsample, -1)
        if self.kind == "polar":
            logmag, phase = y.split(self.bins, dim=-1)
            # Clamp keeps exp() finite early in training; 1e2 is far above speech levels.
            mag = torch.exp(logmag).clamp(max=1e2)
            y = torch.fft.irfft(torch.polar(mag, phase), n=self.n_fft)
        windows = y * self.window  # [B, F, U, n]
        if self.upsample == 1:
            return windows[:, :, 0]
        # Overlap-add the U windows at offsets 0, s, ..., (U - 1) * s of the span; fold (col2im)
        # does exactly this sum in one call.
        cols = windows.reshape(b * f, self.upsample, self.n_fft).transpose(1, 2)
        span = nn.functional.fold(
            cols, output_size=(1, self.span), kernel_size=(1, self.n_fft), stride=(1, self.sub_hop)
        )
        return span.reshape(b, f, self.span)

    def forward(
        self, x: torch.Tensor, state: HeadState, frame_mask: torch.Tensor | None = None
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
        if self.blocks == 2:
            first, second = frames[..., :h], frames[..., h:]
            prev = torch.cat([state.tail[:, None].to(frames.dtype), second[:, :-1]], dim=1)
            state.tail.copy_(second[:, -1])  # in place (see StreamState)
            return (first + prev).flatten(1)
        return self._overlap_add(frames, state)

    def _overlap_add(self, frames: torch.Tensor, state: HeadState) -> torch.Tensor:
        """Overlap-add of spans longer than two blocks, exact in any chunking.

        Block ``b`` of the output sums the parts of frames ``b``, ``b - 1``, ... that cover it,
        always oldest frame first (the pending sums of the state hold the older frames), so a
        stream decoded frame by frame adds in the same order as one offline call.
        """
        b, f, _ = frames.shape
        h, p = self.hop, self.blocks
        parts = nn.functional.pad(frames, (0, p * h - self.span)).reshape(b, f, p, h)
        assert state.beyond is not None  # allocated by init_state for this head
        pending = torch.cat([state.tail, state.beyond], dim=-1).reshape(b, p - 1, h)
        acc = torch.cat([pending.to(frames.dtype), frames.new_zeros(b, f, h)], dim=1)  # [B, F + P - 1, h]
        for k in range(p - 1, 0, -1):
            acc[:, k : k + f] = acc[:, k : k + f] + parts[:, :, k]
        rest = acc[:, f:].reshape(b, -1)
        state.tail.copy_(rest[:, :h])  # in place (see StreamState)
        state.beyond.copy_(rest[:, h:])
        return (parts[:, :, 0] + acc[:, :f]).flatten(1)
