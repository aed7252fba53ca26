"""Fused residual vector quantization: dispatch between the reference and Triton kernels.

See :mod:`codec.kernels.rvq.reference` for the formulation both implement.
"""

from __future__ import annotations

import torch
from codec.kernels.dispatch import backend_for
from codec.kernels.rvq import reference


def rvq_encode(
    x: torch.Tensor,
    search: torch.Tensor,
    search_bias: torch.Tensor,
    out_codebooks: torch.Tensor,
    in_weight: torch.Tensor | None = None,
    in_bias: torch.Tensor | None = None,
    return_quantized: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Codes ``[N, K]`` (and optionally the quantized latent ``[N, D]``) for latents ``x [N, D]``.

    Arguments as in :func:`codec.kernels.rvq.reference.rvq_encode`.  Never tracks gradients:
    callers rebuild the differentiable path from the codes.
    """
    with torch.no_grad():
        if backend_for(x) == "triton":
            from codec.kernels.rvq import triton as _triton

            return _triton.rvq_encode(
                x, search, search_bias, out_codebooks, in_weight, in_bias, return_quantized
            )
        return reference.rvq_encode(
            x, search, search_bias, out_codebooks, in_weight, in_bias, return_quantized
        )


def rvq_decode(codes: torch.Tensor, out_codebooks: torch.Tensor) -> torch.Tensor:
    """Summed codewords ``[N, D]`` for codes ``[N, K]``; see the reference for the contract."""
    with torch.no_grad():
        if backend_for(out_codebooks) == "triton":
            from codec.kernels.rvq import triton as _triton

            return _triton.rvq_decode(codes, out_codebooks)
        return reference.rvq_decode(codes, out_codebooks)


__all__ = ["reference", "rvq_decode", "rvq_encode"]
