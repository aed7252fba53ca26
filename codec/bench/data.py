"""The benchmark's inputs: folders, audio files and manifests, read as mono at a chosen rate.

A manifest is a ``.csv`` (a header row with a ``path`` column) or ``.jsonl`` (one object with
a ``path`` key per line) listing audio files, read by :mod:`codec.manifest` as training and
tokenization read it; relative paths are taken from the manifest's folder.  Folders are
searched recursively for audio files (sorted, so runs and ``--limit`` are repeatable; symbolic
links to folders followed).  Every file gets a name of its
own in the run (its path under its folder, or its name; the path as given when two would share
one), shown as :func:`codec.formats.printable` writes it, so a file name that is not UTF-8
reaches every report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from codec.audio import AudioError, resample
from codec.errors import InputError
from codec.formats import MANIFEST_SUFFIXES, audio_files, printable
from codec.manifest import manifest_paths
from codec.pipeline.audiofile import load_audio


@dataclass(frozen=True)
class Item:
    """One input file: ``path`` and ``name`` (its path relative to the input it came from)."""

    path: Path
    name: str


def collect(inputs: list[str], limit: int | None = None) -> list[Item]:
    """Every audio file named by ``inputs`` (folders, files, manifests), first ``limit`` only."""
    items: list[Item] = []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = [f for f in audio_files(p) if f.is_file()]
            if not found:
                raise InputError(f"{p}: no audio files in this folder")
            items += [Item(f, str(f.relative_to(p))) for f in found]
        elif p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file():
            items += [Item(f, str(f)) for f in read_manifest(p)]
        elif p.is_file():
            items.append(Item(p, p.name))
        else:
            raise InputError(f"{p}: no such file or folder")
    seen: set[Path] = set()
    unique = [i for i in items if not (i.path.resolve() in seen or seen.add(i.path.resolve()))]
    return _named(unique[:limit] if limit else unique)


def _named(items: list[Item]) -> list[Item]:
    """Items with one name each: the report groups rows by name, so two files must never share one."""
    count: dict[str, int] = {}
    for item in items:
        count[item.name] = count.get(item.name, 0) + 1
    return [Item(i.path, printable(i.name if count[i.name] == 1 else str(i.path))) for i in items]


def read_manifest(path: Path) -> list[Path]:
    """The audio paths a ``.csv`` or ``.jsonl`` manifest lists (:mod:`codec.manifest`)."""
    return manifest_paths(path)


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes (the cache key of an input: a changed file is scored again)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class Clip:
    """A file read as mono: ``wav [T]`` float32 at ``sample_rate``, and what the file was."""

    wav: np.ndarray
    sample_rate: int
    file_rate: int
    channels: int


def read_mono(path: Path) -> Clip:
    """Read a file and average its channels (every codec compared here is mono).

    Raises:
        AudioError: unreadable, empty or non-finite audio.
    """
    audio = load_audio(path)
    return Clip(audio.wav.mean(0).numpy(), audio.sample_rate, audio.sample_rate, audio.wav.shape[0])


def at_rate(wav: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``wav [T]`` resampled from ``orig`` to ``new`` Hz (band-limited, torchaudio)."""
    if orig == new:
        return wav
    return resample(torch.from_numpy(np.ascontiguousarray(wav))[None], orig, new)[0].numpy()


__all__ = ["AudioError", "Clip", "InputError", "Item", "at_rate", "collect", "digest", "read_mono"]
