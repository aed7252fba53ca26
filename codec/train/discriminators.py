"""Discriminators: multi-period (waveform) and multi-resolution multi-band STFT.

Written here rather than taken from descript-audio-codec: that package pins its own audio
toolkit and many transitive dependencies for ~150 lines of convolutions, and we want the
channel widths small enough to train on a CPU.

* Multi-period (HiFi-GAN): the waveform folded into ``[T / p, p]`` so 2-D convs with
  ``(k, 1)`` kernels look at every ``p``-th sample: periodic structure (pitch).
* Multi-resolution STFT (DAC): the complex spectrogram (real and imaginary parts as two
  channels) at several FFT sizes; the frequency axis is split into bands, each with its own
  conv stack, so low and high frequencies get separate filters.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

_SLOPE = 0.1


@dataclass
class DiscriminatorOutput:
    """Logits and intermediate activations of every sub-discriminator.

    Attributes:
        logits: one tensor per sub-discriminator (any shape; a real/fake score per position).
        features: per sub-discriminator, the activations of each hidden layer (feature matching).
    """

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]


def _conv2d(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1)) -> nn.Module:
    padding = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    return weight_norm(nn.Conv2d(cin, cout, kernel, stride, padding))


class PeriodDiscriminator(nn.Module):
    """Args: period: fold length; channels: width of the first layer (doubles per layer, up to 8x)."""

    def __init__(self, period: int, channels: int) -> None:
        super().__init__()
        self.period = period
        widths = [1] + [channels * min(2**i, 8) for i in range(5)]
        self.convs = nn.ModuleList(
            _conv2d(cin, cout, (5, 1), (3, 1) if i < 4 else (1, 1))
            for i, (cin, cout) in enumerate(itertools.pairwise(widths))
        )
        self.out = _conv2d(widths[-1], 1, (3, 1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Args: wav ``[B, T]``. Returns logits ``[B, 1, T', p]`` and hidden activations."""
        pad = -wav.shape[-1] % self.period
        x = F.pad(wav, (0, pad), mode="reflect" if pad < wav.shape[-1] else "constant")
        x = x.reshape(x.shape[0], 1, -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), _SLOPE)
            features.append(x)
        return self.out(x), features


class STFTDiscriminator(nn.Module):
    """Args: n_fft: FFT size (hop n_fft / 4); channels: conv width; bands: band edges in [0, 1]."""

    def __init__(self, n_fft: int, channels: int, bands: Sequence[float]) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        bins = n_fft // 2 + 1
        edges = [round(b * bins) for b in bands]
        self.bands = [(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]
        c = channels

        def stack() -> nn.ModuleList:
            return nn.ModuleList(
                [
                    _conv2d(2, c, (3, 9)),
                    _conv2d(c, c, (3, 9), (1, 2)),
                    _conv2d(c, c, (3, 9), (1, 2)),
                    _conv2d(c, c, (3, 9), (1, 2)),
                    _conv2d(c, c, (3, 3)),
                ]
            )

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.out = _conv2d(c, 1, (3, 3))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Args: wav ``[B, T]``. Returns logits ``[B, 1, frames, bins']`` and hidden activations."""
        with torch.autocast(wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float(), self.n_fft, self.n_fft // 4, window=self.window, return_complex=True
            )
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, frames, bins]
        features, outs = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs, strict=True):
            h = x[..., lo:hi]
            for conv in convs:
                h = F.leaky_relu(conv(h), _SLOPE)
                features.append(h)
            outs.append(h)
        return self.out(torch.cat(outs, dim=-1)), features


class Discriminators(nn.Module):
    """All sub-discriminators of a training run.

    Args:
        periods: one :class:`PeriodDiscriminator` per period (empty: none).
        period_channels: their first-layer width.
        stft_sizes: one :class:`STFTDiscriminator` per FFT size (empty: none).
        stft_channels: their width.
        bands: band edges for the STFT discriminators.
    """

    def __init__(
        self,
        periods: Sequence[int],
        period_channels: int,
        stft_sizes: Sequence[int],
        stft_channels: int,
        bands: Sequence[float],
    ) -> None:
        super().__init__()
        subs: list[nn.Module] = [PeriodDiscriminator(p, period_channels) for p in periods]
        subs += [STFTDiscriminator(n, stft_channels, bands) for n in stft_sizes]
        if not subs:
            raise ValueError("no discriminators configured (periods and stft_sizes are both empty)")
        self.subs = nn.ModuleList(subs)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        """Args: wav ``[B, T]``. Returns the logits and activations of every sub-discriminator."""
        logits, features = [], []
        for sub in self.subs:
            logit, feats = sub(wav)
            logits.append(logit)
            features.append(feats)
        return DiscriminatorOutput(logits, features)
