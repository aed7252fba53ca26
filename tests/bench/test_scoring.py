"""The benchmark's metrics against values known in closed form or by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from codec.bench.scoring import available_metrics, score, stft_distance
from codec.demo import example_path

RATE = 16000
CORE = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance", "stft_distance"]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Real speech (the bundled model's example clip, LibriSpeech): PESQ's voice detector needs it."""
    wav, rate = sf.read(example_path(), dtype="float32")
    assert rate == RATE
    return wav[: 3 * RATE]


def test_identical_signals_score_perfectly(speech):
    s = score(speech, speech, RATE, CORE)
    assert not s.skipped
    assert s.values["pesq_wb"] == pytest.approx(4.644, abs=0.01)  # P.862.2's ceiling
    assert s.values["pesq_nb"] > 4.4
    assert s.values["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert s.values["estoi"] == pytest.approx(1.0, abs=1e-6)
    assert s.values["si_sdr"] > 100
    assert s.values["mel_distance"] == pytest.approx(0.0, abs=1e-9)
    assert s.values["stft_distance"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_known_gain(speech, gain):
    est = (gain * speech).astype(np.float32)
    s = score(speech, est, RATE, ["si_sdr", "mel_distance", "stft_distance", "stoi"])
    assert s.values["si_sdr"] > 100  # scale-invariant
    assert s.values["stoi"] == pytest.approx(1.0, abs=1e-6)  # STOI normalises the level too
    # log10 mel magnitudes (power 1) move by log10(gain) everywhere above the floor.
    assert s.values["mel_distance"] == pytest.approx(abs(math.log10(gain)), rel=0.02)
    assert s.values["stft_distance"] == pytest.approx(abs(1 - gain) + abs(math.log(gain)), rel=1e-3)


def test_stft_distance_closed_form_exact(speech):
    assert stft_distance(speech, 0.25 * speech) == pytest.approx(0.75 + math.log(4), rel=1e-6)


def test_known_delay_is_distortion(speech):
    delay = 40  # 2.5 ms: inaudible, but the sample-wise metrics must see it
    est = np.concatenate([np.zeros(delay, np.float32), speech[:-delay]])
    s = score(speech, est, RATE, ["si_sdr", "stft_distance", "mel_distance"])
    assert s.values["si_sdr"] < 5
    assert s.values["mel_distance"] < 0.05  # the spectral envelope barely moves


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_si_sdr_of_white_noise_at_known_snr(snr_db):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(RATE * 4)
    noise = rng.standard_normal(ref.shape[0])
    noise -= noise @ ref / (ref @ ref) * ref  # orthogonal to the reference: SI-SDR = SNR exactly
    noise *= np.linalg.norm(ref) / np.linalg.norm(noise) * 10 ** (-snr_db / 20)
    s = score(0.1 * ref, 0.1 * (ref + noise), RATE, ["si_sdr"])
    assert s.values["si_sdr"] == pytest.approx(snr_db, abs=0.01)


def test_quality_order_follows_the_noise_level(speech):
    rng = np.random.default_rng(1)
    noisy = [speech + a * rng.standard_normal(speech.shape[0]).astype(np.float32) for a in (0.003, 0.03, 0.3)]
    scores = [score(speech, x, RATE, CORE).values for x in noisy]
    for m in ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr"):
        assert scores[0][m] > scores[1][m] > scores[2][m], m
    for m in ("mel_distance", "stft_distance"):
        assert scores[0][m] < scores[1][m] < scores[2][m], m


def test_unscorable_pairs_give_reasons_not_errors(speech):
    silent = score(np.zeros(RATE, np.float32), speech[:RATE], RATE, CORE)
    assert not silent.values and set(silent.skipped) == set(CORE)
    assert "silent" in silent.skipped["pesq_wb"]
    short = score(speech[:800], speech[:800], RATE, CORE)  # 50 ms: PESQ and STOI cannot score it
    assert short.skipped.get("pesq_wb")
    assert "stoi" in short.skipped and "frames" in short.skipped["stoi"]
    assert "si_sdr" in short.values
    bad = speech.copy()
    bad[10] = np.nan
    assert "NaN" in score(speech, bad, RATE, ["si_sdr"]).skipped["si_sdr"]


def test_available_metrics_lists_the_core_set():
    assert set(CORE) <= set(available_metrics())


@pytest.mark.slow
def test_visqol_when_installed(speech):
    pytest.importorskip("visqol")
    rng = np.random.default_rng(2)
    noisy = speech + 0.05 * rng.standard_normal(speech.shape[0]).astype(np.float32)
    clean, degraded = (score(speech, x, RATE, ["visqol"]).values["visqol"] for x in (speech, noisy))
    assert 1.0 <= degraded < clean <= 5.0
