"""Argument checks shared by :class:`codec.api.Codec`, :class:`codec.streaming.Stream` and the
backends: one function per argument, so every caller raises the same class for the same bad
value (audio: :class:`~codec.audio.AudioError`, codes: :class:`~codec.errors.CodesError`,
counts: :class:`~codec.errors.InputError`).
"""

from __future__ import annotations

import torch

from codec.audio import AudioError
from codec.errors import CodesError, InputError


def check_codes(codes: object, rows: int | None, total_codebooks: int, codebook_size: int) -> torch.Tensor:
    """Raise :class:`CodesError` unless ``codes`` is an integer ``[rows, K, F]`` tensor of valid codes.

    Returns them as int64: any integer dtype is taken, the unsigned ones included (PyTorch has
    no min/max for uint16/32/64; a uint64 above the int64 range turns negative, so it is refused).
    """
    if not isinstance(codes, torch.Tensor) or codes.dim() != 3:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise CodesError(f"codes must be a Codes object or a [B, K, F] integer tensor, got {shape}")
    if codes.dtype.is_floating_point or codes.dtype == torch.bool or codes.is_complex():
        raise CodesError(f"codes must be an integer tensor, got {codes.dtype}")
    if rows is not None and codes.shape[0] != rows:
        raise CodesError(f"codes have {codes.shape[0]} rows, expected {rows}")
    if not 1 <= codes.shape[1] <= total_codebooks:
        raise CodesError(f"codes have {codes.shape[1]} codebooks; this model has 1..{total_codebooks}")
    codes = codes.to(torch.long)
    if codes.numel():
        low, high = torch.aminmax(codes)
        if int(low) < 0 or int(high) >= codebook_size:
            raise CodesError(f"codes out of range: values must be in 0..{codebook_size - 1}")
    return codes


def check_samples(wav: object, where: str, batch: tuple[int, int] | None = None) -> torch.Tensor:
    """Raise :class:`AudioError` unless ``wav`` is a float ``[B, C, T]`` tensor (``(B, C) == batch``
    when given) of finite samples."""
    if not isinstance(wav, torch.Tensor) or wav.dim() != 3 or (batch and tuple(wav.shape[:2]) != batch):
        shape = tuple(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
        want = f"[B={batch[0]}, C={batch[1]}, T]" if batch else "[B, C, T]"
        raise AudioError(f"{where} expects {want}, got {shape}")
    if not wav.is_floating_point():
        # Integer PCM would be coded unscaled (32767 for full scale): refuse it everywhere.
        raise AudioError(f"{where} expects float samples in [-1, 1], got {wav.dtype}")
    if not torch.isfinite(wav).all():
        raise AudioError(f"{where}: the audio contains NaN or Inf samples")
    return wav


def check_count(name: str, value: object) -> int:
    """``value`` if it is a positive integer (not a bool), else :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_num_codebooks(value: object, total: int) -> int:
    """Codebooks to use: ``total`` for ``None``, else ``value`` checked to be in ``1..total``."""
    if value is None:
        return total
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"num_codebooks must be an integer, got {value!r}")
    if not 1 <= value <= total:
        raise InputError(f"num_codebooks must be in 1..{total}, got {value}")
    return value
