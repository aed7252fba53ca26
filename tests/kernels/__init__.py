"""Tests of the Triton kernels and their dispatch (``codec.kernels``)."""
