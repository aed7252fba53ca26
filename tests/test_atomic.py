"""Atomic writes: an interrupted write leaves the old file whole and no temporary file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codec import Codec
from codec.atomic import Output, atomic_write, clear_stale
from codec.tokenfile import file as ff
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


def test_dead_writers_temporary_file_is_replaced_without_listing_the_folder(
    tmp_path: Path, monkeypatch
) -> None:
    """Opening an output removes what a killed writer of it left, by name: writing n files into
    one folder must not list the folder n times (that made large folder runs quadratic)."""
    out = tmp_path / "a.cdc"
    first = Output(out)
    dead = first.open()
    dead.write_bytes(b"half")
    os.close(first._lock)  # the writer dies: the kernel drops its lock, its file stays
    first._lock = None
    assert dead.exists()

    def no_listing(*args, **kwargs):
        raise AssertionError("the folder was listed")

    monkeypatch.setattr(Path, "glob", no_listing)
    monkeypatch.setattr(os, "scandir", no_listing)
    monkeypatch.setattr(os, "listdir", no_listing)
    second = Output(out)
    tmp = second.open()
    assert tmp == dead and tmp.read_bytes() == b""  # a fresh file under the same name
    tmp.write_bytes(b"whole")
    second.commit()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cdc"]
    assert out.read_bytes() == b"whole"


def test_clear_stale_removes_temporary_files_of_older_names(tmp_path: Path) -> None:
    """Temporary files named ``.NAME.<random>.codec-tmp*`` (earlier versions) still count as leftovers."""
    out = tmp_path / "a.wav"
    (tmp_path / ".a.wav.x1y2z3.codec-tmp.wav").write_bytes(b"half")
    (tmp_path / ".a.wav.codec-lock").write_bytes(b"")
    (tmp_path / ".b.wav.x1y2z3.codec-tmp.wav").write_bytes(b"another output's")
    clear_stale(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.wav.x1y2z3.codec-tmp.wav"]
