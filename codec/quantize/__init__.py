"""Residual vector quantization: codebook.py -> vq.py -> rvq.py."""

from codec.quantize.rvq import QuantizerOutput, ResidualVQ

__all__ = ["QuantizerOutput", "ResidualVQ"]
