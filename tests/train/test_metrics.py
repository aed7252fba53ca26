"""Sanity of the reconstruction metrics in codec.metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec import metrics


def _speechlike(seconds: float = 3.0, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))  # syllable-rate modulation
    voiced = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 12))
    return (0.1 * envelope * voiced + 0.003 * rng.standard_normal(t.size)).astype(np.float64)


def test_si_sdr():
    x = _speechlike()
    assert metrics.si_sdr(x, x) > 100
    assert metrics.si_sdr(x, 0.5 * x) > 100  # scale invariant
    noisy = x + 0.1 * x.std() * np.random.default_rng(1).standard_normal(x.size)
    assert metrics.si_sdr(x, noisy) == pytest.approx(20.0, abs=0.5)
    assert metrics.si_sdr(x, np.random.default_rng(2).standard_normal(x.size)) < -20
    assert metrics.si_sdr(torch.from_numpy(x), torch.from_numpy(x)) > 100  # tensors too


def test_mel_distance():
    x = _speechlike()
    assert metrics.mel_distance(x, x, 16000) == 0.0
    small = x + 0.001 * np.random.default_rng(1).standard_normal(x.size)
    big = x + 0.05 * np.random.default_rng(1).standard_normal(x.size)
    assert 0 < metrics.mel_distance(x, small, 16000) < metrics.mel_distance(x, big, 16000)


def test_pesq_and_stoi_order_quality():
    x = _speechlike()
    noise = np.random.default_rng(1).standard_normal(x.size)
    clean, noisy = x + 0.001 * noise, x + 0.05 * noise
    assert metrics.pesq_wb(x, x, 16000) > 4.4
    assert metrics.pesq_wb(x, noisy, 16000) < metrics.pesq_wb(x, clean, 16000)
    assert metrics.stoi(x, x, 16000) > 0.99
    assert metrics.stoi(x, noisy, 16000) < metrics.stoi(x, clean, 16000)
    # Other rates are resampled to 16 kHz for PESQ.
    assert metrics.pesq_wb(x, x, 24000) > 4.0


def test_shapes_and_lengths():
    x = _speechlike(1.0)
    assert metrics.si_sdr(x, np.concatenate([x, np.zeros(100)])) > 100  # common length
    with pytest.raises(ValueError, match="1-D"):
        metrics.si_sdr(x[None], x[None])


def test_codebook_entropy():
    uniform = torch.arange(64).repeat(4).reshape(1, 2, 128)  # [B, K, F]
    assert metrics.codebook_entropy(uniform, 64) == pytest.approx([6.0, 6.0])
    constant = torch.zeros(2, 3, 10, dtype=torch.long)
    assert metrics.codebook_entropy(constant, 64) == [0.0, 0.0, 0.0]
    assert metrics.entropy_bits(torch.tensor([1.0, 1.0, 0.0])) == pytest.approx(1.0)


def test_code_usage_counts_each_level_apart():
    codes = torch.tensor([[[0, 1, 1, 3], [2, 2, 2, 2]], [[3, 3, 0, 0], [0, 1, 2, 3]]])  # [B=2, K=2, F=4]
    counts = metrics.code_usage(codes, 4)
    assert counts.tolist() == [[3, 2, 0, 3], [1, 1, 5, 1]]
    assert torch.equal(metrics.code_usage(codes.transpose(1, 2).reshape(-1, 2), 4, level_dim=-1), counts)


def test_inference_core_does_not_import_training_packages():
    import subprocess
    import sys

    code = (
        "import sys, codec, codec.metrics, codec.model, codec.config\n"
        "bad = [m for m in ('lightning', 'auraloss', 'pesq', 'pystoi') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
