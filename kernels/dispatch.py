"""Choosing an implementation: Triton on CUDA tensors, the PyTorch reference elsewhere.

``CODEC_KERNELS=reference`` or ``CODEC_KERNELS=triton`` forces one; ``auto`` or unset chooses by
device.  With ``TRITON_INTERPRET=1`` set before the Triton kernels are imported, the Triton path
runs on the CPU (that is how the tests check it without a GPU).  The variable is read on every
call, so it can be changed at run time.
"""

from __future__ import annotations

import functools
import os

import torch

_CHOICES = ("auto", "reference", "triton")


@functools.cache
def triton_available() -> bool:
    """Whether Triton imports (it is a CUDA-only wheel on some platforms)."""
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    return True


def backend_for(tensor: torch.Tensor) -> str:
    """``"triton"`` or ``"reference"`` for an op whose main input is ``tensor``.

    Raises:
        ValueError: ``CODEC_KERNELS`` holds something else than auto/reference/triton.
        RuntimeError: ``CODEC_KERNELS=triton`` but Triton cannot be imported.
    """
    forced = os.environ.get("CODEC_KERNELS", "").strip().lower()
    if forced and forced != "auto":
        if forced not in _CHOICES:
            raise ValueError(f"CODEC_KERNELS must be one of {_CHOICES}, got {forced!r}")
        if forced == "triton" and not triton_available():
            raise RuntimeError("CODEC_KERNELS=triton but Triton is not importable")
        return forced
    if tensor.is_cuda and triton_available():
        return "triton"
    return "reference"
