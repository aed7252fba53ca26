"""The ``wer`` metric: a Whisper model's transcripts of the reference and the decoded audio,
compared by jiwer (a tiny random Whisper: the plumbing, not recognition)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from codec.cli import main
from tests.bench.tiny_asr import save_tiny_whisper
from tests.conftest import speech_like

pytest.importorskip("jiwer")


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return save_tiny_whisper(tmp_path_factory.mktemp("asr") / "whisper")


def test_normalize() -> None:
    from codec.bench.asr import normalize

    assert normalize("  Hello, World!  It's  3 PM_now. ") == "hello world it's 3 pm now"


def test_wer_compares_the_two_transcripts(whisper, monkeypatch) -> None:
    from codec.bench import asr

    monkeypatch.setenv(asr.ENV, str(whisper))
    speech = speech_like(24000, seed=1)[0].numpy()
    heard = asr.transcriber()(speech, 16000)
    assert heard and set(heard) <= set("abcdefgh ")  # the tiny model's letters
    assert asr.wer(speech, speech, 16000) == 0.0
    noise = np.random.default_rng(0).standard_normal(24000).astype(np.float32)
    assert asr.transcriber()(noise, 16000) != heard and asr.wer(speech, noise, 16000) > 0
    at_8k = speech[::2]  # resampled to Whisper's 16 kHz first
    assert asr.wer(at_8k, at_8k, 8000) == 0.0
    long = np.tile(speech, 21)  # 31.5 s: two 30 s windows, each transcribed
    assert len(asr.transcriber()(long, 16000).split()) >= len(heard.split())


def test_bench_quality_reports_wer(whisper, tmp_path, monkeypatch, capsys) -> None:
    from codec.bench import asr

    monkeypatch.delenv(asr.ENV, raising=False)  # restored after the command sets it
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        sf.write(data / f"{i}.wav", speech_like(20000, seed=5 + i)[0].numpy(), 16000)
    out = tmp_path / "out"
    argv = [
        "bench",
        "quality",
        str(data),
        "--codec",
        "opus@6,24",
        "--metrics",
        "wer,si_sdr",
        "--out",
        str(out),
    ]
    assert main([*argv, "--asr-model", str(whisper), "--jobs", "1", "-q"]) == 0  # a worker process scores
    summary = json.loads((out / "summary.json").read_text())
    wer = [s["metrics"]["wer"] for s in summary["settings"]]
    assert all(w["n"] == 2 and w["mean"] >= 0 for w in wer)
    assert f"by {whisper} (Whisper" in summary["WER"]
    assert len(list((out / "cache").glob("asr-*/opus-*/*.json"))) == 4
    capsys.readouterr()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main([*argv, "--asr-model", "someone/whisper-x", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--asr-model ./whisper-x" in err, err
