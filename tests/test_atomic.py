"""Atomic writes: an interrupted write leaves the old file whole and no temporary file behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from codec import Codec
from codec import fileformat as ff
from codec.atomic import atomic_write
from tests.conftest import speech_like


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_write_keeps_the_old_file(tmp_path: Path, error: BaseException) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"half of the new")
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, write)
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_token_file_that_fails_midway_is_not_written(tmp_path: Path, debug_codec: Codec, monkeypatch) -> None:
    codes = debug_codec.encode(speech_like(1600)[None], 16000)
    path = ff.write_codes(tmp_path / "x.cdc", codes)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise MemoryError("while packing")

    monkeypatch.setattr(ff, "encode_frames", broken)
    with pytest.raises(MemoryError):
        ff.write_codes(path, debug_codec.encode(speech_like(3200, seed=1)[None], 16000))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.cdc"]
