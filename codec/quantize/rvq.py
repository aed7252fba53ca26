"""Residual vector quantizer: K levels, fused search, quantizer dropout for variable bitrate.

Encoding chooses every level's code in one call to :func:`codec.kernels.rvq.rvq_encode`
(Triton on GPU).  Training then rebuilds the differentiable path from those codes, level by
level, with a straight-through estimator, so gradients are those of the plain PyTorch loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from codec.config import QuantizerConfig
from codec.kernels.rvq import reference, rvq_decode, rvq_encode
from codec.quantize.vq import VectorQuantizer


@dataclass
class QuantizerOutput:
    """Training output for ``M`` latent rows.

    Attributes:
        quantized: ``[M, D]`` summed codewords (straight-through).
        codes: ``[M, K]`` chosen codes (all levels, also those dropped for the row).
        num_active: ``[M]`` levels each row used (quantizer dropout).
        commitment_loss, codebook_loss: scalars, averaged over the active levels and rows.
        first_level: ``[M, D]`` the first level's codeword alone (straight-through, always
            active), what semantic distillation supervises; ``None`` where not computed.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    num_active: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor
    first_level: torch.Tensor | None = None


@dataclass
class _Packed:
    search: torch.Tensor
    search_bias: torch.Tensor
    out_codebooks: torch.Tensor
    in_weight: torch.Tensor | None
    in_bias: torch.Tensor | None
    stages: reference.EncodeStages
    table: reference.DecodeTable | None = None  # built at the first decode


class ResidualVQ(nn.Module):
    """Args: latent_dim: D; cfg: the quantizer section of the model config."""

    def __init__(self, latent_dim: int, cfg: QuantizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.levels = nn.ModuleList(
            VectorQuantizer(
                latent_dim,
                cfg.kind,
                cfg.codebook_size,
                cfg.codebook_dim,
                cfg.ema,
                cfg.ema_decay,
                cfg.kmeans_init,
                cfg.dead_code_threshold,
            )
            for _ in range(cfg.total_codebooks)
        )
        self._cache: tuple[list[int], _Packed] | None = None
        self._source_list: list[torch.Tensor] | None = None

    @property
    def total_codebooks(self) -> int:
        return len(self.levels)

    def _packed(self) -> _Packed:
        """Stacked search tensors; cached for inference until a parameter or buffer changes."""
        if self._source_list is None:
            self._source_list = [t for lvl in self.levels for t in (*lvl.parameters(), lvl.codebook.embed)]
        versions = [t._version for t in self._source_list]
        if self._cache is not None and self._cache[0] == versions and not torch.is_grad_enabled():
            return self._cache[1]
        with torch.no_grad():
            parts = [lvl.search_tensors() for lvl in self.levels]
            projected = self.levels[0].projected
            stacked = (
                torch.stack([p[0] for p in parts]).contiguous(),
                torch.stack([p[1] for p in parts]).contiguous(),
                torch.stack([p[2] for p in parts]).contiguous(),
                torch.stack([lvl.in_proj.weight for lvl in self.levels]) if projected else None,
                torch.stack([lvl.in_proj.bias for lvl in self.levels]) if projected else None,
            )
            packed = _Packed(*stacked, stages=reference.prepare_encode(*stacked))
        self._cache = (versions, packed)
        return packed

    def _apply(self, fn, *args, **kwargs):  # type: ignore[override]
        # .to()/.cuda()/.half() replace tensor storage without bumping versions: drop the cache.
        self._cache, self._source_list = None, None
        return super()._apply(fn, *args, **kwargs)

    def encode(self, latent: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """Args: latent ``[M, D]``; num_codebooks: levels to use (default all). Returns ``[M, K]``."""
        k = num_codebooks or self.total_codebooks
        p = self._packed()
        in_w = None if p.in_weight is None else p.in_weight[:k]
        in_b = None if p.in_bias is None else p.in_bias[:k]
        codes, _ = rvq_encode(
            latent, p.search[:k], p.search_bias[:k], p.out_codebooks[:k], in_w, in_b, stages=p.stages.head(k)
        )
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[M, K]`` with K <= total_codebooks. Returns latent ``[M, D]`` float32."""
        p = self._packed()
        if p.table is None:
            p.table = reference.prepare_decode(p.out_codebooks)
        return rvq_decode(codes, p.out_codebooks, table=p.table)

    def _kmeans_init(self, latent: torch.Tensor) -> None:
        """Seed uninitialised codebooks level by level from the residuals of this batch."""
        residual = latent.detach()
        for lvl in self.levels:
            with torch.no_grad():
                lvl.codebook.maybe_kmeans_init(lvl.project_in(residual))
                search, bias, out_cb = lvl.search_tensors()
                idx = (lvl.project_in(residual) @ search.T - bias).argmax(-1)
                residual = residual - out_cb[idx]

    def forward(self, latent: torch.Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        """Training forward. Args: latent ``[M, D]``; num_codebooks caps the levels (default: all,
        with quantizer dropout in training mode)."""
        if torch.is_autocast_enabled(latent.device.type):
            # Mixed-precision training: code choice and codebook statistics stay float32 (in
            # bf16, near-equal scores tie and argmax favours low indices, skewing code usage).
            with torch.autocast(latent.device.type, enabled=False):
                return self.forward(latent.float(), num_codebooks)
        m = latent.shape[0]
        k_max = num_codebooks or self.total_codebooks
        if self.training and not all(bool(lvl.codebook.initialized) for lvl in self.levels):
            self._kmeans_init(latent)
        codes = self.encode(latent.detach(), k_max)
        num_active = torch.full((m,), k_max, device=latent.device, dtype=torch.long)
        if self.training and self.cfg.dropout > 0 and num_codebooks is None:
            drop = torch.rand(m, device=latent.device) < self.cfg.dropout
            random_k = torch.randint(1, k_max + 1, (m,), device=latent.device)
            num_active = torch.where(drop, random_k, num_active)
        residual = latent
        quantized = torch.zeros_like(latent)
        commitment = latent.new_zeros(())
        codebook = latent.new_zeros(())
        first_level = None
        for k in range(k_max):
            lvl = self.levels[k]
            out = lvl(residual, codes[:, k])
            if k == 0:
                first_level = out.quantized
            active = (num_active > k).to(latent.dtype)
            quantized = quantized + out.quantized * active[:, None]
            residual = residual - out.quantized
            denom = active.sum().clamp(min=1.0)
            commitment = commitment + (out.commitment * active).sum() / denom
            codebook = codebook + (out.codebook * active).sum() / denom
            if self.training:
                rows = active.bool()
                lvl.codebook.update(out.projected.detach()[rows], codes[rows, k])
        return QuantizerOutput(
            quantized, codes, num_active, commitment / k_max, codebook / k_max, first_level
        )
