"""Fused kernels behind the model's hot paths (installed as ``codec.kernels``).

One folder per op: ``reference.py`` (pure PyTorch, the ground truth, runs anywhere),
``triton.py`` (Triton kernels and launchers) and a dispatch function in ``__init__.py``.
"""

from codec.kernels.dispatch import backend_for

__all__ = ["backend_for"]
