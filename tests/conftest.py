"""Shared fixtures: tiny random-init models (debug preset) and deterministic test signals."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import pytest
import torch

from codec import Codec, CodecConfig


def speech_like(num_samples: int, sample_rate: int = 16000, seed: int = 0, channels: int = 1) -> torch.Tensor:
    """A voiced-speech-like test signal ``[channels, T]``: harmonics with a gliding pitch, noise bursts."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples) / sample_rate
    out = []
    for c in range(channels):
        f0 = 110 + 40 * torch.sin(2 * math.pi * (0.7 + 0.1 * c) * t)
        phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
        voiced = sum(torch.sin(h * phase) / h for h in range(1, 12))
        envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t + c)
        noise = 0.05 * torch.randn(num_samples, generator=gen)
        out.append(0.2 * voiced * envelope + noise)
    return torch.stack(out).float().clamp(-1, 1)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """PyTorch's CPU thread count set to ``n`` inside, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def stream_codes(codec: Codec, wav: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Codes ``[B, K, F]`` of ``wav [B, 1, T]`` streamed in chunks of ``sizes`` samples (cycled), flushed."""
    stream, outs, pos = codec.stream(batch_size=wav.shape[0]), [], 0
    while pos < wav.shape[-1]:
        for n in sizes:
            outs.append(stream.encode(wav[..., pos : pos + n]))
            pos += n
    outs.append(stream.flush().codes)
    return torch.cat(outs, dim=-1)


@pytest.fixture(scope="session")
def debug_config() -> CodecConfig:
    return CodecConfig.from_yaml("debug")


@pytest.fixture(scope="session")
def debug_codec(debug_config: CodecConfig) -> Codec:
    torch.manual_seed(0)
    return Codec.from_config(debug_config)


@pytest.fixture(scope="session")
def noncausal_codec(debug_config: CodecConfig) -> Codec:
    torch.manual_seed(1)
    return Codec.from_config(dataclasses.replace(debug_config, causal=False, name="debug-noncausal"))
