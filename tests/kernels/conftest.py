"""Run the Triton kernels on the CPU (``TRITON_INTERPRET=1``) when no CUDA GPU is present.

Triton reads ``TRITON_INTERPRET`` when ``@triton.jit`` decorates a function: its own library
functions when ``triton`` is first imported, ours when ``codec.kernels.rvq.triton`` is.  Pytest
imports this conftest while collecting ``tests/kernels``, before any test runs; nothing in
``codec`` imports triton at import time (dispatch imports it on first use), so setting the
variable here comes early enough.  Should something have imported triton before (a plugin, a
test module importing it at module level), the launcher raises a clear error instead of running
compiled kernels on CPU tensors.  With a GPU nothing changes: the tests run the compiled kernels
on CUDA tensors.  (A subprocess per test would also work, at several seconds of start-up each.)
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
