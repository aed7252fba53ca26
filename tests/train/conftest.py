"""Fixtures for the training tests: generated audio folders and a short debug training run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("lightning")


def synth(seconds: float, sample_rate: int, seed: int, channels: int = 1) -> np.ndarray:
    """A chirp plus a harmonic tone plus a little noise: ``[T, channels]`` float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = rng.uniform(100, 300)
    chirp = np.sin(2 * np.pi * (f0 * t + rng.uniform(50, 400) * t**2))
    tone = sum(np.sin(2 * np.pi * k * f0 * 1.5 * t) / k for k in range(1, 4))
    x = 0.25 * chirp + 0.15 * tone + 0.02 * rng.standard_normal(t.size)
    out = np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1)
    return out.astype(np.float32)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 16 kHz mono files (FLAC and WAV) and one 44.1 kHz stereo file."""
    root = tmp_path_factory.mktemp("audio")
    for i in range(6):
        sf.write(root / f"item{i}.{'flac' if i % 2 else 'wav'}", synth(2.0, 16000, i), 16000)
    sub = root / "stereo"
    sub.mkdir()
    sf.write(sub / "music.flac", synth(2.0, 44100, 99, channels=2), 44100)
    return root


@pytest.fixture(scope="session")
def val_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("val")
    for i in range(2):
        sf.write(root / f"val{i}.flac", synth(1.5, 16000, 100 + i), 16000)
    return root


def debug_preset(audio: Path, val: Path, **train_changes):
    """The bundled debug preset pointed at the generated folders (train fields replaced)."""
    from codec.train.config import load_train_preset

    preset = load_train_preset("debug")
    data = dataclasses.replace(preset.train.data, train=(str(audio),), val=(str(val),))
    train = dataclasses.replace(preset.train, data=data, **train_changes)
    return type(preset)(preset.model, train)


@dataclasses.dataclass
class DebugRun:
    run_dir: Path
    module: object
    preset: object


@pytest.fixture(scope="session")
def debug_run(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path, val_dir: Path) -> DebugRun:
    """The debug preset trained for its 50 steps (checkpoints at 25 and 50), shared by tests."""
    from codec.train.runner import RunOptions, train

    run_dir = tmp_path_factory.mktemp("run")
    preset = debug_preset(audio_dir, val_dir)
    logging = dataclasses.replace(preset.train.logging, every_n_steps=1)
    preset = type(preset)(preset.model, dataclasses.replace(preset.train, logging=logging))
    module = train(preset, RunOptions(run_dir=run_dir, accelerator="cpu", progress_bar=False))
    return DebugRun(run_dir, module, preset)


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of a TensorBoard scalar of a run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]
