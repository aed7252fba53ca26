"""Argument checks shared by every RVQ backend, so bad calls fail the same clear way everywhere.

Only shapes, dtypes and devices are checked (host-side metadata, no device sync); code values
are not, as that would synchronise the GPU on every call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _expect(ok: bool, message: Callable[[], str] | str) -> None:
    # Messages are built only on failure (a lambda): these checks run once per streamed frame.
    if not ok:
        raise ValueError(message() if callable(message) else message)


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def check_encode_args(
    x: torch.Tensor,
    search: torch.Tensor,
    search_bias: torch.Tensor,
    out_codebooks: torch.Tensor,
    in_weight: torch.Tensor | None,
    in_bias: torch.Tensor | None,
) -> None:
    """Raise ``ValueError`` unless the shapes of :func:`codec.kernels.rvq.rvq_encode` agree.

    Args: x ``[N, D]``, search ``[K, S, d]``, search_bias ``[K, S]``, out_codebooks ``[K, S, D]``,
    in_weight ``[K, D, d]`` and in_bias ``[K, d]`` (both or neither).
    """
    _expect(x.dim() == 2, lambda: f"x must be [N, D], got shape {_shape(x)}")
    _expect(search.dim() == 3, lambda: f"search must be [K, S, d], got shape {_shape(search)}")
    dim = x.shape[1]
    stages, size, search_dim = search.shape
    _expect(
        stages >= 1 and size >= 1,
        lambda: f"search needs at least one stage and one code, got {_shape(search)}",
    )
    _expect(
        tuple(search_bias.shape) == (stages, size),
        lambda: f"search_bias must be [K, S] = {[stages, size]}, got {_shape(search_bias)}",
    )
    _expect(
        tuple(out_codebooks.shape) == (stages, size, dim),
        lambda: f"out_codebooks must be [K, S, D] = {[stages, size, dim]}, got {_shape(out_codebooks)}",
    )
    _expect((in_weight is None) == (in_bias is None), "in_weight and in_bias go together (both or neither)")
    if in_weight is None:
        _expect(
            search_dim == dim,
            lambda: f"without a projection the search dim must equal D={dim}, got {search_dim}",
        )
    else:
        _expect(
            tuple(in_weight.shape) == (stages, dim, search_dim),
            lambda: f"in_weight must be [K, D, d] = {[stages, dim, search_dim]}, got {_shape(in_weight)}",
        )
        _expect(
            tuple(in_bias.shape) == (stages, search_dim),
            lambda: f"in_bias must be [K, d] = {[stages, search_dim]}, got {_shape(in_bias)}",
        )
    tensors = [t for t in (x, search, search_bias, out_codebooks, in_weight, in_bias) if t is not None]
    for t in tensors:
        _expect(t.dtype in _FLOATS, lambda t=t: f"RVQ inputs must be float16/bfloat16/float32, got {t.dtype}")
        _expect(
            t.device == x.device, lambda t=t: f"all RVQ inputs must be on {x.device}, got one on {t.device}"
        )


def check_encode_input(x: torch.Tensor, dim: int, device: torch.device) -> None:
    """Raise ``ValueError`` unless ``x`` is a float ``[N, dim]`` tensor on ``device`` (the check
    left when the other arguments come prepared, already checked, see ``rvq_encode(stages=...)``)."""
    _expect(x.dim() == 2 and x.shape[1] == dim, lambda: f"x must be [N, D={dim}], got shape {_shape(x)}")
    _expect(x.dtype in _FLOATS, lambda: f"RVQ inputs must be float16/bfloat16/float32, got {x.dtype}")
    _expect(x.device == device, lambda: f"all RVQ inputs must be on {device}, got x on {x.device}")


def check_decode_args(codes: torch.Tensor, out_codebooks: torch.Tensor) -> None:
    """Raise ``ValueError`` unless codes ``[N, K]`` fit out_codebooks ``[K', S, D]`` (``K <= K'``)."""
    _expect(codes.dim() == 2, lambda: f"codes must be [N, K], got shape {_shape(codes)}")
    _expect(
        out_codebooks.dim() == 3, lambda: f"out_codebooks must be [K', S, D], got {_shape(out_codebooks)}"
    )
    _expect(
        not codes.is_floating_point() and not codes.is_complex() and codes.dtype != torch.bool,
        lambda: f"codes must be an integer tensor, got {codes.dtype}",
    )
    _expect(
        codes.shape[1] <= out_codebooks.shape[0],
        lambda: f"codes use {codes.shape[1]} codebooks but only {out_codebooks.shape[0]} exist",
    )
    _expect(
        out_codebooks.dtype in _FLOATS,
        lambda: f"out_codebooks must be floating point, got {out_codebooks.dtype}",
    )
    _expect(codes.device == out_codebooks.device, "codes and out_codebooks must be on the same device")
