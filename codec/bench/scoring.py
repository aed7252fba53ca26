"""The benchmark's metrics: one reference and one decoded signal in, named scores out.

Intrusive metrics compare the decoded signal with the reference at the common scoring rate
(16 kHz by default): PESQ wide-band and narrow-band (ITU-T P.862.2 / P.862, the ``pesq``
package), STOI and ESTOI (``pystoi``), SI-SDR, mel distance and multi-resolution STFT
distance (torch).  Where their optional packages are installed, ViSQOL (``visqol-python``,
speech mode), DNSMOS (``speechmos``, non-intrusive: the decoded signal alone) and speaker
similarity (``resemblyzer``, cosine of the two utterance embeddings) are added, and the word
error rate of a Whisper model on the decoded audio against the reference (``wer``, with
``jiwer``; :mod:`codec.bench.asr`).

A metric that cannot score a pair (too short, silent, missing package) gives no number and a
one-line reason instead: the run goes on and the report lists the reason.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from codec import metrics as M

# name -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "pesq_wb": ("PESQ-wb", True),
    "pesq_nb": ("PESQ-nb", True),
    "stoi": ("STOI", True),
    "estoi": ("ESTOI", True),
    "si_sdr": ("SI-SDR (dB)", True),
    "mel_distance": ("mel distance", False),
    "stft_distance": ("MR-STFT distance", False),
    "visqol": ("ViSQOL MOS", True),
    "dnsmos": ("DNSMOS OVRL", True),
    "speaker_sim": ("speaker similarity", True),
    "wer": ("WER (ASR)", False),
}
# Optional metrics and the package each needs (module name to probe, pip name).
OPTIONAL = {"visqol": ("visqol", "visqol-python"), "dnsmos": ("speechmos", "speechmos"),
            "speaker_sim": ("resemblyzer", "resemblyzer"), "wer": ("jiwer", "jiwer")}  # fmt: skip
# The default set: cheap enough for a whole data set (about 1 s of CPU per 15 s pair).  The
# optional ones cost more (here, per 15 s pair after a first slow call: ViSQOL ~1.5 s,
# DNSMOS ~4.5 s), so a run asks for them by name or with ``--metrics all``.
CORE = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance", "stft_distance"]
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) at the scoring rate


@dataclass
class Scores:
    """Scores of one decoded signal: ``values`` by metric name, ``skipped`` metric -> reason."""

    values: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def available_metrics() -> list[str]:
    """The metric names this installation can compute (optional ones only with their package)."""
    return [m for m in METRICS if m not in OPTIONAL or importlib.util.find_spec(OPTIONAL[m][0])]


def stft_distance(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Multi-resolution STFT distance: spectral convergence + mean |ln magnitude ratio| (lower is better).

    Averaged over three Hann-windowed resolutions (512/128, 1024/256, 2048/512).  For an
    estimate ``g * reference`` it is ``|1 - g| + |ln g|``.  Hand-written (a dozen lines) so
    the bench does not pull in the training extra's auraloss.
    """
    ref, est = (torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in (reference, estimate))
    n = min(ref.shape[-1], est.shape[-1])
    total = 0.0
    for n_fft, hop in STFT_RESOLUTIONS:
        win = torch.hann_window(n_fft, dtype=torch.float64)
        a, b = (torch.stft(x[:n], n_fft, hop, window=win, return_complex=True).abs() for x in (ref, est))
        sc = torch.linalg.norm(a - b) / torch.linalg.norm(a).clamp(min=1e-12)
        log_l1 = (a.clamp(min=1e-7).log() - b.clamp(min=1e-7).log()).abs().mean()
        total += float(sc + log_l1)
    return total / len(STFT_RESOLUTIONS)


def _pesq(mode: str) -> Callable[[np.ndarray, np.ndarray, int], float]:
    def fn(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
        from pesq import pesq

        if sr not in (8000, 16000):
            raise ValueError(f"PESQ needs a scoring rate of 8000 or 16000 Hz, not {sr}")
        if mode == "wb" and sr != 16000:
            raise ValueError("wide-band PESQ needs a 16000 Hz scoring rate")
        return float(pesq(sr, ref.astype(np.float64), est.astype(np.float64), mode))

    return fn


def _stoi(extended: bool) -> Callable[[np.ndarray, np.ndarray, int], float]:
    def fn(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
        # pystoi warns and returns 1e-5 when too few frames are left after removing silence:
        # make that a reason, not a score.
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            return M.stoi(ref, est, sr, extended=extended)

    return fn


def _visqol(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    from visqol import VisqolApi

    if VisqolApi not in _MODELS:
        api = VisqolApi()
        api.create(mode="speech")
        _MODELS[VisqolApi] = api
    result = _MODELS[VisqolApi].measure_from_arrays(ref.astype(np.float64), est.astype(np.float64), sr)
    return float(result.moslqo)


def _dnsmos(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    from speechmos import dnsmos

    return float(dnsmos.run(est.astype(np.float32), sr)["ovrl_mos"])


def _speaker_sim(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    from resemblyzer import VoiceEncoder, preprocess_wav

    if VoiceEncoder not in _MODELS:
        _MODELS[VoiceEncoder] = VoiceEncoder("cpu", verbose=False)
    enc = _MODELS[VoiceEncoder]
    a, b = (enc.embed_utterance(preprocess_wav(x.astype(np.float32), source_sr=sr)) for x in (ref, est))
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


_MODELS: dict[type, Any] = {}  # optional metrics' models, built once per process

FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "pesq_wb": _pesq("wb"),
    "pesq_nb": _pesq("nb"),
    "stoi": _stoi(False),
    "estoi": _stoi(True),
    "si_sdr": lambda r, e, sr: M.si_sdr(r, e),
    "mel_distance": M.mel_distance,
    "stft_distance": lambda r, e, sr: stft_distance(r, e),
    "visqol": _visqol,
    "dnsmos": _dnsmos,
    "speaker_sim": _speaker_sim,
    "wer": lambda r, e, sr: _asr().wer(r, e, sr),
}


def _asr() -> Any:
    from codec.bench import asr

    return asr


def score(reference: np.ndarray, estimate: np.ndarray, sample_rate: int, metrics: list[str]) -> Scores:
    """Every metric in ``metrics`` on one pair of mono signals ``[T]`` at ``sample_rate``.

    Returns: :class:`Scores`; a metric that raises (too short, silent, not finite) is skipped
    with the first line of its error as the reason.
    """
    out = Scores()
    ref = np.asarray(reference, dtype=np.float32)
    est = np.asarray(estimate, dtype=np.float32)
    if not np.isfinite(est).all():
        out.skipped = {m: "decoded audio has NaN or Inf samples" for m in metrics}
        return out
    if float(np.abs(ref).max(initial=0.0)) == 0.0:
        out.skipped = {m: "reference is silent" for m in metrics}
        return out
    for name in metrics:
        try:
            value = FUNCTIONS[name](ref, est, sample_rate)
        except Exception as err:  # a metric library's own error on this pair: skip, say why
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            out.skipped[name] = f"{type(err).__name__}: {text[:160]}"
            continue
        if math.isfinite(value):
            out.values[name] = value
        else:
            out.skipped[name] = f"not a finite value ({value})"
    return out


def score_task(task: tuple[np.ndarray, np.ndarray, int, list[str]]) -> Scores:
    """:func:`score` for a process pool (one picklable argument; one torch thread per worker)."""
    torch.set_num_threads(1)
    return score(*task)
