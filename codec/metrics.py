"""Reconstruction metrics for a reference and a decoded signal: SI-SDR, mel distance, PESQ, STOI.

Every function takes two 1-D signals (numpy arrays or torch tensors, the reference first) at
one sample rate and returns a float.  The signals are compared over their common length.
SI-SDR and mel distance are plain torch/torchaudio; PESQ and STOI need the ``pesq`` and
``pystoi`` packages (the ``train`` or ``bench`` extra), imported only when called.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch

ArrayLike = Any  # 1-D numpy array or torch tensor

_PESQ_RATE = 16000


class MetricUnavailable(RuntimeError):
    """A metric's optional package is not installed."""


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x))
    t = t.to(torch.float64)
    if t.dim() != 1:
        raise ValueError(f"expected a 1-D signal, got shape {tuple(t.shape)}")
    return t


def _pair(reference: ArrayLike, estimate: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    ref, est = _as_tensor(reference), _as_tensor(estimate)
    n = min(ref.shape[0], est.shape[0])
    if n == 0:
        raise ValueError("empty signal")
    return ref[:n], est[:n]


def si_sdr(reference: ArrayLike, estimate: ArrayLike) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (higher is better).

    The reference is scaled by the least-squares gain onto the estimate's subspace, so a
    global gain change does not count as distortion.  Means are removed first.
    """
    ref, est = _pair(reference, estimate)
    ref, est = ref - ref.mean(), est - est.mean()
    alpha = (est @ ref) / (ref @ ref + 1e-12)
    target = alpha * ref
    noise = est - target
    return float(10 * torch.log10((target @ target + 1e-12) / (noise @ noise + 1e-12)))


@lru_cache(maxsize=8)
def _mel_transform(sample_rate: int) -> torch.nn.Module:
    import torchaudio

    # 64 ms window, 16 ms hop, 80 bands: the usual TTS/codec mel front end, scaled to the rate.
    n_fft = 2 ** round(math.log2(0.064 * sample_rate))
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=n_fft // 4,
        n_mels=80,
        power=1.0,
        norm="slaney",
        mel_scale="slaney",
    )


def mel_distance(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Mean absolute difference of log10 mel magnitudes (80 bands, 64 ms window; lower is better)."""
    ref, est = _pair(reference, estimate)
    mel = _mel_transform(int(sample_rate))
    with torch.no_grad():
        a = torch.log10(mel(ref.float()).clamp(min=1e-5))
        b = torch.log10(mel(est.float()).clamp(min=1e-5))
    return float((a - b).abs().mean())


def _to_16k(x: torch.Tensor, sample_rate: int) -> np.ndarray:
    if sample_rate != _PESQ_RATE:
        import torchaudio.functional as AF

        x = AF.resample(x.float(), sample_rate, _PESQ_RATE).double()
    return x.numpy()


def pesq_wb(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO 1.04-4.64), at 16 kHz (resampled if needed).

    Raises:
        MetricUnavailable: the ``pesq`` package is missing.
    """
    try:
        from pesq import pesq
    except ImportError:
        raise MetricUnavailable("PESQ needs the pesq package: pip install 'codec[bench]'") from None
    ref, est = _pair(reference, estimate)
    return float(pesq(_PESQ_RATE, _to_16k(ref, sample_rate), _to_16k(est, sample_rate), "wb"))


def stoi(reference: ArrayLike, estimate: ArrayLike, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility in [0, 1] (``extended``: ESTOI).

    Raises:
        MetricUnavailable: the ``pystoi`` package is missing.
    """
    try:
        from pystoi import stoi as _stoi
    except ImportError:
        raise MetricUnavailable("STOI needs the pystoi package: pip install 'codec[bench]'") from None
    ref, est = _pair(reference, estimate)
    return float(_stoi(ref.numpy(), est.numpy(), int(sample_rate), extended=extended))


def codebook_entropy(codes: ArrayLike, codebook_size: int) -> list[float]:
    """Usage entropy in bits of each codebook level (maximum ``log2(codebook_size)``).

    Args:
        codes: integer codes ``[B, K, F]`` (or ``[K, F]``); all items and frames are pooled.
        codebook_size: entries per codebook.
    Returns: one entropy per level (``K`` values).
    """
    c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes)).long()
    if c.dim() < 2:
        raise ValueError(f"expected codes [..., K, F], got shape {tuple(c.shape)}")
    return [entropy_bits(counts) for counts in code_usage(c, codebook_size)]


def code_usage(codes: torch.Tensor, codebook_size: int, level_dim: int = -2) -> torch.Tensor:
    """How often each entry of each codebook level is used, pooled over everything else.

    Args:
        codes: integer codes with the levels along ``level_dim`` (``[B, K, F]``: -2; the
            quantizer's ``[M, K]``: -1).
        codebook_size: entries per codebook.
    Returns: counts ``[K, codebook_size]`` float32 (one bincount for all levels).
    """
    levels = codes.movedim(level_dim, 0).reshape(codes.shape[level_dim], -1).long()
    offsets = torch.arange(levels.shape[0], device=levels.device)[:, None] * codebook_size
    counts = torch.bincount((levels + offsets).flatten(), minlength=levels.shape[0] * codebook_size)
    return counts.float().reshape(levels.shape[0], codebook_size)


def entropy_bits(counts: torch.Tensor) -> float:
    """Entropy in bits of the distribution given by non-negative ``counts [S]``."""
    p = counts.double() / counts.sum().clamp(min=1)
    p = p[p > 0]
    return abs(float((p * p.log2()).sum()))  # abs: no "-0.0" for a single used code
