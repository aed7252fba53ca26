"""Data module: folders and manifests, resampling/downmix, crops, loudness, errors."""

from __future__ import annotations

import json
import math

import pytest
import soundfile as sf
import torch

from codec.train.config import DataConfig
from codec.train.data import (
    AudioDataModule,
    DataError,
    RandomCrops,
    StepSampler,
    Utterances,
    find_audio,
    normalize_loudness,
    read_audio,
    split_files,
)


def test_folder_scan_is_recursive_and_sorted(audio_dir):
    files = find_audio([audio_dir])
    assert len(files) == 7
    assert [f.path for f in files] == sorted(f.path for f in files)
    stereo = [f for f in files if f.channels == 2]
    assert len(stereo) == 1 and stereo[0].sample_rate == 44100


def test_csv_and_jsonl_manifests(audio_dir, tmp_path):
    names = ["item0.wav", "item1.flac", "stereo/music.flac"]
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("path,speaker\n" + "".join(f"{audio_dir / n},x\n" for n in names))
    jsonl = audio_dir / "list.jsonl"  # relative entries resolve against the manifest's folder
    jsonl.write_text("".join(json.dumps({"path": n}) + "\n" for n in names))
    try:
        for manifest in (csv_path, jsonl):
            files = find_audio([manifest])
            assert sorted(f.path.split("/")[-1] for f in files) == ["item0.wav", "item1.flac", "music.flac"]
    finally:
        jsonl.unlink()


def test_bad_sources_raise_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no audio files found"):
        find_audio([tmp_path])
    with pytest.raises(DataError, match="no such folder"):
        find_audio([tmp_path / "missing"])
    with pytest.raises(DataError, match="no training data"):
        find_audio([])
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nx.wav\n")
    with pytest.raises(DataError, match="'path' column"):
        find_audio([bad])


def test_stereo_44k_is_downmixed_and_resampled(audio_dir):
    (music,) = [f for f in find_audio([audio_dir]) if f.channels == 2]
    wav = read_audio(music, 0, music.num_samples, 16000)
    assert wav.dim() == 1 and abs(wav.shape[0] - 32000) <= 1
    raw, _ = sf.read(music.path, dtype="float32")
    # Downmix is the channel mean; the energy survives resampling (content is below 8 kHz).
    ratio = wav.pow(2).mean() / torch.from_numpy(raw.mean(axis=1)).pow(2).mean()
    assert 0.9 < float(ratio) < 1.1


def test_random_crops_are_deterministic_normalised_and_sized(audio_dir):
    cfg = DataConfig(loudness_db=-20.0, loudness_jitter_db=0.0)
    files = find_audio([audio_dir])
    crops = RandomCrops(files, cfg, 16000, 8000, seed=3)
    a, b = crops[17], crops[17]
    assert a.shape == (8000,) and torch.equal(a, b)
    assert not torch.equal(crops[17], crops[18])
    assert abs(10 * math.log10(float(a.pow(2).mean())) + 20.0) < 0.5
    assert not torch.equal(RandomCrops(files, cfg, 16000, 8000, seed=4)[17], a)


def test_short_files_are_padded(audio_dir):
    files = find_audio([audio_dir])
    crop = RandomCrops(files, DataConfig(), 16000, 48000, seed=0)[0]
    assert crop.shape == (48000,) and crop[-100:].abs().max() == 0


def test_loudness_normalisation_leaves_silence_and_limits_peaks():
    silent = torch.zeros(1000)
    assert torch.equal(normalize_loudness(silent, -20.0), silent)
    spiky = torch.zeros(1000)
    spiky[0] = 0.001
    assert normalize_loudness(spiky, 0.0).abs().max() <= 0.99


def test_step_sampler_resumes_and_splits_ranks():
    first = StepSampler(0, 0, 1)
    it = iter(first)
    keys = [next(it) for _ in range(10)]
    resumed = iter(StepSampler(6, 0, 1))
    assert [next(resumed) for _ in range(4)] == keys[6:]
    r0, r1 = iter(StepSampler(0, 0, 2)), iter(StepSampler(0, 1, 2))
    k0, k1 = {next(r0) for _ in range(50)}, {next(r1) for _ in range(50)}
    assert not k0 & k1


def test_validation_split_and_utterances(audio_dir, val_dir):
    train = find_audio([audio_dir])
    kept, held = split_files(train, None, 0.25)
    assert held and not {f.path for f in held} & {f.path for f in kept}
    with pytest.raises(DataError, match="no validation data"):
        split_files(train, None, 0.0)
    dm = AudioDataModule(DataConfig(train=(str(audio_dir),), val=(str(val_dir),)), 16000, 160)
    assert len(dm.val_files) == 2 and len(dm.train_files) == 7
    item = Utterances(dm.val_files, dm.cfg, 16000, 160)[0]
    assert item.shape[0] % 160 == 0 and item.shape[0] == 24000


def test_train_loader_batches(audio_dir, val_dir):
    cfg = DataConfig(
        train=(str(audio_dir),), val=(str(val_dir),), segment_seconds=0.2, batch_size=3, num_workers=0
    )
    dm = AudioDataModule(cfg, 16000, 160)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (3, 3200) and batch.dtype == torch.float32
