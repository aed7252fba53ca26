"""One quantizer level: projections around a :class:`Codebook`, and its training losses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from codec.modules.linear import Linear
from codec.quantize.codebook import Codebook


@dataclass
class LevelOutput:
    """Training output of one level for ``M`` latent rows.

    Attributes:
        quantized: ``[M, D]`` the level's contribution, straight-through to the residual.
        commitment: ``[M]`` per-row commitment loss (pulls the encoder towards its code).
        codebook: ``[M]`` per-row codebook loss (pulls learned codes towards the encoder).
        projected: ``[M, d]`` the residual in codebook space (what the codebook statistics use).
    """

    quantized: torch.Tensor
    commitment: torch.Tensor
    codebook: torch.Tensor
    projected: torch.Tensor


class VectorQuantizer(nn.Module):
    """Args:
    latent_dim: D, the residual's dimension.
    kind: ``"factorized"`` (cosine search on L2-normalised codes in ``codebook_dim``) or
        ``"euclidean"`` (L2 search; projections only when ``codebook_dim != latent_dim``).
    codebook_size, codebook_dim and the EMA options: see :class:`Codebook`.
    """

    def __init__(
        self,
        latent_dim: int,
        kind: str,
        codebook_size: int,
        codebook_dim: int,
        ema: bool,
        ema_decay: float,
        kmeans_init: bool,
        dead_code_threshold: float,
    ) -> None:
        super().__init__()
        self.kind = kind
        project = kind == "factorized" or codebook_dim != latent_dim
        self.in_proj: nn.Module = Linear(latent_dim, codebook_dim) if project else nn.Identity()
        self.out_proj: nn.Module = Linear(codebook_dim, latent_dim) if project else nn.Identity()
        self.codebook = Codebook(
            codebook_size, codebook_dim, ema, ema_decay, kmeans_init, dead_code_threshold
        )

    @property
    def projected(self) -> bool:
        return isinstance(self.in_proj, Linear)

    def search_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(search [S, d], search_bias [S], out_codebook [S, D])`` for the fused search."""
        embed = self.codebook.embed
        if self.kind == "factorized":
            search = F.normalize(embed, dim=-1)
            bias = embed.new_zeros(embed.shape[0])
        else:
            search = embed
            bias = 0.5 * embed.pow(2).sum(-1)
        return search, bias, self.out_proj(embed)

    def forward(self, residual: torch.Tensor, idx: torch.Tensor) -> LevelOutput:
        """Differentiable path for codes ``idx [M]`` already chosen by the search.

        Args: residual ``[M, D]``; idx ``[M]``.
        """
        z_e = self.in_proj(residual)
        z_q = self.codebook.embed[idx]
        commitment = F.mse_loss(z_e, z_q.detach(), reduction="none").mean(-1)
        if self.codebook.ema:
            codebook = torch.zeros_like(commitment)
        else:
            codebook = F.mse_loss(z_q, z_e.detach(), reduction="none").mean(-1)
        # Straight-through: the forward value is the code, the gradient goes to z_e.
        quantized = self.out_proj(z_e + (z_q - z_e).detach())
        return LevelOutput(quantized, commitment, codebook, z_e)

    def project_in(self, residual: torch.Tensor) -> torch.Tensor:
        return self.in_proj(residual)
