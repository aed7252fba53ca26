"""Bit packing of codes: integers of ``bits`` bits each, most significant bit first.

The payload of token files and token stream packets (:mod:`codec.tokenfile`): codes are
stored frame-major (``[F, C, K]``), the last byte zero-padded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

_PACK_SLICE = 1 << 18  # codes packed per numpy pass (multiple of 8)


def bits_per_code(codebook_size: int) -> int:
    """``ceil(log2(codebook_size))``, at least 1."""
    return max(1, math.ceil(math.log2(codebook_size)))


def packed_size(num_codes: int, bits: int) -> int:
    return (num_codes * bits + 7) // 8


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Bit-pack integers in ``0 .. 2**bits - 1`` (any shape, C order) at ``bits`` bits each, MSB first.

    Vectorised: each value becomes its 32 big-endian bits (``np.unpackbits``), the low ``bits``
    columns are kept and ``np.packbits`` joins them.  Done in slices of :data:`_PACK_SLICE`
    codes (a multiple of 8, so every slice ends on a byte) to bound the 32-byte-per-code scratch.
    """
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    flat = np.ascontiguousarray(codes).reshape(-1)
    parts = []
    for start in range(0, flat.size, _PACK_SLICE):
        part = flat[start : start + _PACK_SLICE].astype(">u4")
        bitmat = np.unpackbits(part.view(np.uint8).reshape(-1, 4), axis=1)[:, 32 - bits :]
        parts.append(np.packbits(bitmat.reshape(-1)).tobytes())
    return b"".join(parts)


def unpack_codes(data: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: the first ``count`` values as ``[count]`` int64."""
    raw = np.frombuffer(data, dtype=np.uint8)
    out = np.empty(count, dtype=np.int64)
    step = _PACK_SLICE * bits // 8  # bytes per slice
    for i, start in enumerate(range(0, count, _PACK_SLICE)):
        n = min(_PACK_SLICE, count - start)
        bitmat = np.unpackbits(raw[i * step : (i + 1) * step], count=n * bits).reshape(n, bits)
        full = np.zeros((n, 32), dtype=np.uint8)
        full[:, 32 - bits :] = bitmat
        out[start : start + n] = np.packbits(full, axis=1).view(">u4").reshape(-1)
    return out


def encode_frames(codes: torch.Tensor, bits: int) -> bytes:
    """Codes ``[C, K, f]`` -> packed bytes in frame-major order ``[f, C, K]``."""
    return pack_codes(codes.detach().cpu().permute(2, 0, 1).numpy(), bits)


def decode_frames(data: bytes, header: Any, frames: int) -> torch.Tensor:
    """Packed bytes of ``frames`` frames -> codes ``[C, K, frames]`` int64 (range not checked).

    ``header`` gives ``channels``, ``num_codebooks``, ``codes_per_frame`` and ``bits_per_code``
    (a :class:`codec.tokenfile.StreamHeader`).
    """
    flat = unpack_codes(data, frames * header.codes_per_frame, header.bits_per_code)
    arr = flat.reshape(frames, header.channels, header.num_codebooks).transpose(1, 2, 0)
    return torch.from_numpy(np.ascontiguousarray(arr))
