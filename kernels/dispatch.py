"""Choosing an implementation: Triton on CUDA tensors, the PyTorch reference elsewhere.

``CODEC_KERNELS=reference`` or ``CODEC_KERNELS=triton`` forces one (with ``TRITON_INTERPRET=1``
the Triton path runs on the CPU, which is how the tests check it without a GPU).
"""

from __future__ import annotations

import functools
import os

import torch

_CHOICES = ("reference", "triton")


@functools.cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    return True


def backend_for(tensor: torch.Tensor) -> str:
    """``"triton"`` or ``"reference"`` for an op whose main input is ``tensor``."""
    forced = os.environ.get("CODEC_KERNELS", "").strip().lower()
    if forced:
        if forced not in _CHOICES:
            raise ValueError(f"CODEC_KERNELS must be one of {_CHOICES}, got {forced!r}")
        if forced == "triton" and not triton_available():
            raise RuntimeError("CODEC_KERNELS=triton but Triton is not importable")
        return forced
    if tensor.is_cuda and triton_available():
        return "triton"
    return "reference"
