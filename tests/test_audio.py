"""Audio file I/O and validation."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.audio import AudioError, resampled_length
from codec.pipeline.audiofile import AudioFileSource, audio_info, load_audio, save_audio


def test_save_and_load_round_trip(tmp_path) -> None:
    wav = torch.sin(torch.linspace(0, 100, 8000)).repeat(2, 1) * 0.5
    for ext in (".wav", ".flac"):
        path = tmp_path / f"x{ext}"
        save_audio(path, wav, 16000)
        back, sr = load_audio(path)
        assert sr == 16000 and back.shape == (2, 8000)
        assert (back - wav).abs().max() < 1e-4  # 16-bit PCM
        assert audio_info(path).duration == 0.5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    blocks = list(AudioFileSource(tmp_path / "x.wav", block_seconds=3000 / 16000).blocks())
    assert [b.shape[-1] for b in blocks] == [3000, 3000, 2000]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, I am not audio " * 20), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros((0, 1), "float32"), 16000, format="WAV"), "empty"),
        (lambda p: sf.write(p, np.full((100, 1), np.nan, "float32"), 16000, subtype="FLOAT"), "NaN"),
    ],
)
def test_bad_audio_files_give_clear_errors(tmp_path, make, fragment: str) -> None:
    path = tmp_path / "in.wav"
    make(path)
    with pytest.raises(AudioError, match=fragment):
        load_audio(path)


def test_truncated_file_is_refused_or_read_consistently(tmp_path) -> None:
    path = tmp_path / "t.flac"
    save_audio(path, torch.rand(1, 16000) - 0.5, 16000)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(AudioError):
        load_audio(path)


def test_truncated_wav_is_refused_by_every_reader(tmp_path) -> None:
    # libsndfile reads a cut-off WAV without complaint; the readers compare with its header.
    path = tmp_path / "t.wav"
    save_audio(path, torch.rand(1, 16000) - 0.5, 16000)
    path.write_bytes(path.read_bytes()[:9000])
    with pytest.raises(AudioError, match="truncated WAV"):
        load_audio(path)
    with pytest.raises(AudioError, match="truncated WAV"):
        next(AudioFileSource(path, block_seconds=0.1).blocks())


def test_outputs_get_the_umask_permissions(tmp_path) -> None:
    # Temporary files start owner-only (0600); the renamed output must not stay that way.
    old = os.umask(0o022)
    try:
        save_audio(tmp_path / "x.wav", torch.zeros(1, 100), 16000)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.wav").stat().st_mode) == 0o644


def test_unsupported_output_format(tmp_path) -> None:
    with pytest.raises(AudioError, match="unsupported output format"):
        save_audio(tmp_path / "x.mp9", torch.zeros(1, 10), 16000)
    assert not list(tmp_path.iterdir())


def test_resampled_length_is_ceil() -> None:
    assert resampled_length(777, 44100, 16000) == 282
    assert resampled_length(torch.tensor([44100, 1]), 44100, 16000).tolist() == [16000, 1]
