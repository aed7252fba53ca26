"""One set of audio suffixes for every command that searches a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from codec.bench.data import collect
from codec.formats import AUDIO_SUFFIXES
from codec.pipeline.folder import folder_jobs
from codec.tokenize.inputs import list_inputs
from codec.train.data import find_audio

AUDIO = ["a.wav", "b.FLAC", "sub/c.ogg", "sub/deeper/d.caf", "e.aiff", "f.au"]


def test_every_command_picks_the_same_files_from_a_folder(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).uniform(-0.1, 0.1, 1600)
    for name in AUDIO:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, noise, 16000, format=_format(path))
    # Not picked up: headerless raw audio (it needs a rate and a sample format), other files.
    (tmp_path / "g.raw").write_bytes(bytes(3200))
    (tmp_path / "notes.txt").write_text("not audio")
    expected = sorted(str(tmp_path / name) for name in AUDIO)

    assert sorted(item.path for item in list_inputs([str(tmp_path)]).items) == expected  # tokenize
    assert (
        sorted(str(job.source) for job in folder_jobs(tmp_path, tmp_path / "out", AUDIO_SUFFIXES, ".cdc"))
        == expected
    )
    assert sorted(str(item.path) for item in collect([str(tmp_path)])) == expected  # codec bench
    assert sorted(f.path for f in find_audio([tmp_path])) == expected  # training data


def _format(path: Path) -> str:
    return {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".caf": "CAF", ".aiff": "AIFF", ".au": "AU"}[
        path.suffix.lower()
    ]
