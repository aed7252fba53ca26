"""Teacher frames on the codec's frame grid, and the distillation loss of the first codebook.

Time alignment: frame ``i`` of a sequence at ``rate`` frames per second covers the interval
centred at ``(i + 0.5) / rate`` seconds.  The codec's frame ``j`` (centre
``offset + (j + 0.5) / frame_rate``) takes the teacher's features linearly interpolated at
that time; before the first or after the last teacher frame, the nearest one is used::

    teacher (20 Hz)  |    0    |    1    |    2    |    3    |
    codec   (50 Hz)  | 0| 1| 2| 3| 4| 5| 6| 7| 8| 9|
                       ^ frame 2 of the codec (centre 50 ms) = teacher frame 0.5: halfway 0 -> 1
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def align_frames(
    features: torch.Tensor, rate: float, frame_rate: float, num_frames: int, offset: float = 0.0
) -> torch.Tensor:
    """Resample teacher features along time onto the codec's frame grid.

    Hand-written rather than ``F.interpolate``: that maps two grids by their lengths only,
    and cannot take a known teacher rate (whose last frame may not reach the end of the
    input) or an offset into a longer sequence (a crop of precomputed whole-file features).

    Args:
        features: ``[B, Ft, D]`` at ``rate`` frames per second, frame 0 starting at time 0.
        rate: the teacher's frames per second.
        frame_rate: the codec's frames per second.
        num_frames: codec frames wanted.
        offset: time (seconds) of the codec's first frame start on the teacher's time axis.
    Returns: ``[B, num_frames, D]``.
    """
    if features.shape[1] == 0:
        raise ValueError("teacher returned no frames (input shorter than its receptive field)")
    steps = torch.arange(num_frames, dtype=torch.float64, device=features.device)
    pos = ((offset + (steps + 0.5) / frame_rate) * rate - 0.5).clamp(0, features.shape[1] - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=features.shape[1] - 1)
    w = (pos - lo).to(features.dtype)[None, :, None]
    return features[:, lo] * (1 - w) + features[:, hi] * w


def frame_span(rate: float, frame_rate: float, num_frames: int, offset: float, total: int) -> tuple[int, int]:
    """Teacher frames ``[start, stop)`` that :func:`align_frames` reads for this grid."""
    first = (offset + 0.5 / frame_rate) * rate - 0.5
    last = (offset + (num_frames - 0.5) / frame_rate) * rate - 0.5
    start = min(max(math.floor(first), 0), total - 1)
    stop = min(max(math.floor(last) + 2, start + 1), total)
    return start, stop


class SemanticHead(nn.Module):
    """The learned projection from the first codebook's output to the teacher's features.

    Training only: it belongs to the training module, not to the codec, so an exported model
    does not carry it.

    ``kind="linear"`` maps each frame on its own (one codeword per frame, so at most
    ``codebook_size`` distinct predictions, on the affine span of the codewords).
    ``kind="conv"`` first mixes ``kernel`` neighbouring frames (centred; zero-padded at the
    ends) into ``width`` channels with a GELU, then maps them linearly: the prediction of a
    frame reads its neighbours' codes too, as the teacher's features (from a transformer
    over the whole input) depend on them.  Either way it reads the first codebook only.

    Args:
        latent_dim: the codec's latent dimension (the quantizer's output).
        teacher_dim: D of the teacher's features.
        loss: ``"cosine"`` (1 - cosine similarity, averaged over frames) or ``"l1"``.
        normalize: standardise the targets per dimension first (batch statistics in training,
            their running average otherwise).  Self-supervised features share a large common
            offset (and WavLM a few outlier dimensions): on raw targets a cosine loss is mostly
            met by predicting that offset, and the first codebook learns little from it.
        kind: ``"linear"`` or ``"conv"``.
        kernel: frames the convolution reads (odd; ``kind="conv"`` only).
        width: channels of the convolution (``kind="conv"`` only).
    """

    def __init__(
        self,
        latent_dim: int,
        teacher_dim: int,
        loss: str = "cosine",
        normalize: bool = True,
        kind: str = "linear",
        kernel: int = 1,
        width: int = 256,
    ) -> None:
        super().__init__()
        if loss not in ("cosine", "l1"):
            raise ValueError(f"semantic loss must be 'cosine' or 'l1', got {loss!r}")
        if kind not in ("linear", "conv"):
            raise ValueError(f"semantic head must be 'linear' or 'conv', got {kind!r}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"semantic head kernel must be odd and positive, got {kernel}")
        self.loss, self.kind = loss, kind
        self.mix = nn.Conv1d(latent_dim, width, kernel, padding=kernel // 2) if kind == "conv" else None
        self.proj = nn.Linear(width if kind == "conv" else latent_dim, teacher_dim)
        self.norm = nn.BatchNorm1d(teacher_dim, affine=False, momentum=0.01) if normalize else None

    def predict(self, first: torch.Tensor) -> torch.Tensor:
        """Args: first ``[B, F, latent_dim]``. Returns: ``[B, F, teacher_dim]`` (float32)."""
        x = first.float()
        if self.mix is not None:
            x = F.gelu(self.mix(x.transpose(1, 2))).transpose(1, 2)
        return self.proj(x)

    def standardize(self, target: torch.Tensor) -> torch.Tensor:
        """``target [B, F, D]`` standardised per dimension (unchanged when ``normalize`` is off)."""
        if self.norm is None:
            return target
        return self.norm(target.reshape(-1, target.shape[-1])).reshape(target.shape)

    def forward(self, first: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: first ``[B, F, latent_dim]`` (level 0 of the RVQ); target ``[B, F, D]``.

        Returns: the scalar loss (float32).
        """
        pred = self.predict(first)
        target = self.standardize(target.to(pred))
        if self.loss == "cosine":
            return 1 - F.cosine_similarity(pred, target, dim=-1).mean()
        return F.l1_loss(pred, target)
