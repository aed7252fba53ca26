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
from codec.kernels.rvq.checks import check_decode_args, check_encode_args, check_encode_input


def rvq_encode(
    x: torch.Tensor,
    search: torch.Tensor,
    search_bias: torch.Tensor,
    out_codebooks: torch.Tensor,
    in_weight: torch.Tensor | None = None,
    in_bias: torch.Tensor | None = None,
    return_quantized: bool = False,
    *,
    stages: reference.EncodeStages | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Codes ``[N, K]`` (and optionally the quantized latent ``[N, D]``) for latents ``x [N, D]``.

    Arguments as in :func:`codec.kernels.rvq.reference.rvq_encode`; ``stages``: the same
    arguments already checked and prepared by :func:`codec.kernels.rvq.reference.prepare_encode`
    (for callers that encode many times with the same weights), which the reference backend
    then uses as they are.  Never tracks gradients: callers rebuild the differentiable path
    from the codes.
    """
    with torch.no_grad():
        if backend_for(x) == "triton":
            from codec.kernels.rvq import triton as _triton

            return _triton.rvq_encode(
                x, search, search_bias, out_codebooks, in_weight, in_bias, return_quantized
            )
        if stages is None:
            check_encode_args(x, search, search_bias, out_codebooks, in_weight, in_bias)
            stages = reference.prepare_encode(search, search_bias, out_codebooks, in_weight, in_bias)
        else:
            check_encode_input(x, out_codebooks.shape[-1], out_codebooks.device)
        return reference.encode_stages(x, stages, return_quantized)


def rvq_decode(
    codes: torch.Tensor, out_codebooks: torch.Tensor, *, table: reference.DecodeTable | None = None
) -> torch.Tensor:
    """Summed codewords ``[N, D]`` float32 for codes ``[N, K]``; codes outside ``[0, S)`` add zero
    on every backend (the contract is the reference's, :mod:`codec.kernels.rvq.reference`).

    ``table``: ``out_codebooks`` prepared by :func:`codec.kernels.rvq.reference.prepare_decode`
    (for callers that decode many times with the same weights), used by the reference backend
    on small inputs.
    """
    with torch.no_grad():
        if backend_for(out_codebooks) == "triton":
            from codec.kernels.rvq import triton as _triton

            return _triton.rvq_decode(codes, out_codebooks)
        check_decode_args(codes, out_codebooks)
        return reference.rvq_decode(codes, out_codebooks, table)


__all__ = ["reference", "rvq_decode", "rvq_encode"]
