"""A linear layer that stores its weight as ``[in, out]``.

Why not ``nn.Linear``: at one frame per call (streaming), ``addmm`` with a contiguous
``[in, out]`` weight runs 1.5-2.5x faster on CPU than ``nn.Linear``'s ``[out, in]`` layout
(measured on this project's reference machine: 256 -> 768 at M=1, 16 us vs 36 us, one thread).
Inputs of any rank are flattened to 2-D so every path uses the same kernel.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Linear(nn.Module):
    """``y = x @ weight + bias``. Args: in_features, out_features, bias."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[..., in]``. Returns ``[..., out]``."""
        flat = x.reshape(-1, self.in_features)
        out = flat @ self.weight if self.bias is None else torch.addmm(self.bias, flat, self.weight)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )
