"""Fused residual vector quantization: dispatch between the reference and Triton kernels.

:func:`rvq_encode` and :func:`rvq_decode` pick the backend with
:func:`codec.kernels.dispatch.backend_for` (Triton for CUDA tensors, the PyTorch reference
otherwise, ``CODEC_KERNELS=reference|triton`` forces one).  Both backends implement the
formulation of :mod:`codec.kernels.rvq.reference`; the Triton launchers also take
keyword-only extras (output buffers, precision, tiles), see :mod:`codec.kernels.rvq.triton`.
"""

from __future__ import annotations

import torch

from codec.kernels.dispatch import backend_for
from codec.kernels.rvq import reference
from codec.kernels.rvq.checks import check_decode_args, check_encode_args


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
        check_encode_args(x, search, search_bias, out_codebooks, in_weight, in_bias)
        return reference.rvq_encode(
            x, search, search_bias, out_codebooks, in_weight, in_bias, return_quantized
        )


def rvq_decode(codes: torch.Tensor, out_codebooks: torch.Tensor) -> torch.Tensor:
    """Summed codewords ``[N, D]`` float32 for codes ``[N, K]``; codes outside ``[0, S)`` add zero
    on every backend (the contract is the reference's, :mod:`codec.kernels.rvq.reference`)."""
    with torch.no_grad():
        if backend_for(out_codebooks) == "triton":
            from codec.kernels.rvq import triton as _triton

            return _triton.rvq_decode(codes, out_codebooks)
        check_decode_args(codes, out_codebooks)
        return reference.rvq_decode(codes, out_codebooks)


__all__ = ["reference", "rvq_decode", "rvq_encode"]
