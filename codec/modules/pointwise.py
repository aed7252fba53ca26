"""Elementwise functions whose every value is independent of its place in the tensor.

PyTorch's CPU kernels compute a tensor in vectors of 8-16 values, and the last values of each
thread's share (fewer than two vectors) with scalar code.  For ``pow`` and the tanh GELU the
two differ in the last bit (``abs``, ``log``, ``exp``, ``cos`` and ``sin`` agree:
``tests/test_pointwise.py`` checks both).  A frame's features then depended on where the frame
lay in a tensor: its position in a batch or a streamed chunk, and the thread count; a near-tie
in the quantizer turns such a bit into another code.  Measured with the bundled model: one dev
file coded on 2 threads got 9 of its 9,912 codes different from 1 thread, and the encoder's
output for 5 of 11 LibriSpeech files batched together differed from coding each alone.

:func:`same_everywhere` keeps every value on the vector path: it applies the function to the
whole tensor when every thread's share is whole pairs of vectors, and otherwise to pieces of
:data:`PIECE` values (whole pairs of vectors, each small enough for one thread).

What it relies on (ATen's CPU loops, checked by ``tests/test_pointwise.py`` on 1-8 threads): a
contiguous tensor of ``n`` values is split into ``k`` shares of ``ceil(n / k)`` values, ``k``
the thread count (GELU) or ``min(threads, ceil(n / 32768))`` (the other kernels), and each share
is computed in pairs of vectors from its start, then a scalar tail of the rest.  These are
ATen's internals, not a promise: the package pins PyTorch below the first release they were
not checked on (:data:`CHECKED_TORCH`, the bound in ``pyproject.toml``; a test ties the two).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# The newest PyTorch (major, minor) whose CPU loops were checked to split tensors as described
# above; pyproject.toml allows no later release.
CHECKED_TORCH = (2, 14)
# Two vectors of the widest instruction set PyTorch uses on a CPU (AVX-512: 2 x 16 floats),
# doubled so that complex values (2 floats each) are whole vectors too.
VECTOR_PAIR = 64
# ATen's parallel grain size: below it, one thread computes the whole tensor.
GRAIN = 32768
# The pieces: whole pairs of vectors, below the grain.
PIECE = GRAIN // 2


def same_everywhere(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for an elementwise ``fn``, each value computed as it would be anywhere else.

    On a GPU, and under autograd (training), this is ``fn(x)``: their kernels do not split
    values between vector and scalar code, or the last bit does not matter there.
    """
    n = x.numel()
    if x.device.type != "cpu" or n == 0 or torch.is_grad_enabled():
        return fn(x)
    if n % VECTOR_PAIR == 0 and x.is_contiguous():
        threads = torch.get_num_threads()
        # Shares: one per thread for kernels that set their own grain (GELU: n / threads),
        # else one per GRAIN values, at most one per thread.  Whole pairs of vectors each:
        # no scalar tail anywhere.
        if (
            threads == 1
            or n % (threads * VECTOR_PAIR) == n % (min(threads, -(-n // GRAIN)) * VECTOR_PAIR) == 0
        ):
            return fn(x)
    flat = x.reshape(-1)
    if n % VECTOR_PAIR:
        flat = torch.cat([flat, flat.new_zeros(VECTOR_PAIR - n % VECTOR_PAIR)])
    if flat.numel() <= PIECE:  # one piece (a streamed frame): no copy of the pieces
        return fn(flat)[:n].view(x.shape)
    out = torch.cat([fn(flat[i : i + PIECE]) for i in range(0, flat.numel(), PIECE)])
    return out[:n].view(x.shape)
