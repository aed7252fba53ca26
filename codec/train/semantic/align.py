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

    Args:
        latent_dim: the codec's latent dimension (the quantizer's output).
        teacher_dim: D of the teacher's features.
        loss: ``"cosine"`` (1 - cosine similarity, averaged over frames) or ``"l1"``.
        normalize: standardise the targets per dimension first (batch statistics in training,
            their running average otherwise).  Self-supervised features share a large common
            offset (and WavLM a few outlier dimensions): on raw targets a cosine loss is mostly
            met by predicting that offset, and the first codebook learns little from it.
    """

    def __init__(
        self, latent_dim: int, teacher_dim: int, loss: str = "cosine", normalize: bool = True
    ) -> None:
        super().__init__()
        if loss not in ("cosine", "l1"):
            raise ValueError(f"semantic loss must be 'cosine' or 'l1', got {loss!r}")
        self.loss = loss
        self.proj = nn.Linear(latent_dim, teacher_dim)
        self.norm = nn.BatchNorm1d(teacher_dim, affine=False, momentum=0.01) if normalize else None

    def forward(self, first: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: first ``[B, F, latent_dim]`` (level 0 of the RVQ); target ``[B, F, D]``.

        Returns: the scalar loss (float32).
        """
        pred = self.proj(first.float())
        target = target.to(pred)
        if self.norm is not None:
            target = self.norm(target.reshape(-1, target.shape[-1])).reshape(target.shape)
        if self.loss == "cosine":
            return 1 - F.cosine_similarity(pred, target, dim=-1).mean()
        return F.l1_loss(pred, target)
