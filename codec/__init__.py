"""codec: a multi-codebook neural audio codec (RVQ) for speech language models."""

__version__ = "0.1.0"
