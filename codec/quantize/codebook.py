"""One codebook: learned or EMA-updated entries, k-means init and dead-code replacement.

The codebook only stores and maintains its entries; choosing the nearest entry happens in
the fused search (:mod:`codec.kernels.rvq`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


def _broadcast(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(t, src=0)
    return t


def kmeans(samples: torch.Tensor, num_clusters: int, iters: int = 10) -> torch.Tensor:
    """Plain Lloyd k-means seeded with distinct samples.

    Identical seeds would stay identical (a tie goes to the lowest index, so the copy never gets
    a point): with fewer samples than clusters, which is common for a large single codebook and
    a small first batch, every sample seeds one centroid and the rest are jittered copies.

    Args: samples ``[M, d]``. Returns centroids ``[num_clusters, d]``.
    """
    m = samples.shape[0]
    gen = torch.Generator(device="cpu").manual_seed(0)
    pick = torch.randperm(m, generator=gen)[torch.arange(num_clusters) % m].to(samples.device)
    centroids = samples[pick].clone()
    if num_clusters > m:
        spread = (samples - samples.mean(0)).pow(2).mean(0).sqrt().clamp(min=1e-3)
        noise = torch.randn(num_clusters - m, samples.shape[1], generator=gen).to(samples)
        centroids[m:] += 0.01 * spread * noise
    for _ in range(iters):
        assign = torch.cdist(samples, centroids).argmin(dim=-1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, samples)
        counts = torch.bincount(assign, minlength=num_clusters).to(samples.dtype)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


class Codebook(nn.Module):
    """``size`` entries of dimension ``dim``.

    Args:
        size: number of entries.
        dim: entry dimension.
        ema: entries are buffers updated by exponential moving averages of their assigned
            vectors (EnCodec/SoundStream) instead of parameters learned by a codebook loss.
        decay: EMA decay (also used to track usage for dead-code replacement).
        kmeans_init: initialise entries from k-means of the first training batch.
        dead_code_threshold: entries whose EMA usage (assignments per step) falls below this
            are re-seeded with random vectors from the current batch (0 disables).
    """

    def __init__(
        self, size: int, dim: int, ema: bool, decay: float, kmeans_init: bool, dead_code_threshold: float
    ) -> None:
        super().__init__()
        self.size, self.dim = size, dim
        self.ema, self.decay = ema, decay
        self.dead_code_threshold = dead_code_threshold
        init = torch.randn(size, dim)
        if ema:
            self.register_buffer("embed", init)
            self.register_buffer("embed_sum", init.clone())
            self.register_buffer("cluster_size", torch.ones(size))
        else:
            self.embed = nn.Parameter(init)
        self.register_buffer("usage", torch.ones(size))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))

    def maybe_kmeans_init(self, samples: torch.Tensor) -> None:
        """Seed the entries with k-means of ``samples [M, dim]`` once (rank 0's, under DDP)."""
        if bool(self.initialized):
            return
        with torch.no_grad():
            centroids = _broadcast(kmeans(samples.detach().float(), self.size))
            # In place on the tensor itself (not .data), so its version counter moves and
            # caches keyed on it (the inference search tensors, the weights fingerprint) see it.
            self.embed.copy_(centroids)
            if self.ema:
                self.embed_sum.copy_(centroids)
                self.cluster_size.fill_(1.0)
            self.initialized.fill_(True)

    @torch.no_grad()
    def update(self, samples: torch.Tensor, idx: torch.Tensor) -> None:
        """Training step bookkeeping. Args: samples ``[M, dim]`` the vectors assigned ``idx [M]``."""
        counts = _all_reduce(torch.bincount(idx, minlength=self.size).to(self.usage.dtype))
        self.usage.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            sums = torch.zeros_like(self.embed_sum).index_add_(
                0, idx, samples.detach().to(self.embed_sum.dtype)
            )
            _all_reduce(sums)
            self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            # Laplace smoothing so rarely used entries do not divide by ~0.
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + 1e-5) / (n + self.size * 1e-5) * n
            self.embed.copy_(self.embed_sum / smoothed[:, None])
        if self.dead_code_threshold > 0:
            self._replace_dead(samples)

    def _replace_dead(self, samples: torch.Tensor) -> None:
        dead = self.usage < self.dead_code_threshold
        num_dead = int(dead.sum())
        if num_dead == 0 or samples.shape[0] == 0:
            return
        pick = torch.randint(samples.shape[0], (num_dead,), device=samples.device)
        fresh = _broadcast(samples.detach()[pick].to(self.embed.dtype).contiguous())
        self.embed[dead] = fresh  # not .data: see maybe_kmeans_init
        if self.ema:
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
        self.usage[dead] = 1.0
