"""One manifest reader for tokenize, training and the benchmark: the same manifest gives the same
files to all three, and one that any of them refuses, all of them refuse with the same line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec.errors import InputError
from codec.manifest import ManifestError, manifest_paths, manifest_rows


def _tokenize(manifest: Path) -> list[Path]:
    from codec.tokenize.inputs import list_inputs

    return [Path(item.path) for item in list_inputs([str(manifest)]).items]


def _train(manifest: Path) -> list[Path]:
    pytest.importorskip("lightning")
    from codec.train.data import find_audio

    return [Path(f.path) for f in find_audio([manifest])]


def _bench(manifest: Path) -> list[Path]:
    from codec.bench.data import collect

    return [item.path for item in collect([str(manifest)])]


READERS: dict[str, Callable[[Path], list[Path]]] = {"tokenize": _tokenize, "train": _train, "bench": _bench}


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    (tmp_path / "sub").mkdir()
    paths = [tmp_path / "a.wav", tmp_path / "sub" / "b.flac"]
    for i, path in enumerate(paths):
        sf.write(path, np.full(1600, 0.1 * (i + 1), dtype=np.float32), 16000)
    return paths


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_every_reader_takes_the_same_files_from_a_manifest(
    tmp_path: Path, clips: list[Path], reader: str, suffix: str
) -> None:
    manifest = tmp_path / f"list{suffix}"
    relative = ["a.wav", str(clips[1])]  # a relative path (from the manifest's folder), an absolute one
    if suffix == ".csv":
        manifest.write_text("path,speaker\n" + "".join(f"{p},s{i}\n" for i, p in enumerate(relative)))
    else:
        manifest.write_text("".join(f'{{"path": "{p}", "speaker": {i}}}\n\n' for i, p in enumerate(relative)))
    assert manifest_paths(manifest) == clips
    assert sorted(p.resolve() for p in READERS[reader](manifest)) == sorted(p.resolve() for p in clips)


BAD = {
    "headerless.csv": ("a.wav\nsub/b.flac\n", "headerless.csv: no 'path' column in the header row"),
    "empty.csv": ("path,id\n", "empty.csv: the manifest lists no files"),
    "blank.csv": ("path,id\n,x\n", "blank.csv:2: no 'path'"),
    "extra.csv": ("path\na.wav,more\n", "extra.csv:2: more fields than the header names"),
    "latin1.csv": (b"path\n\xe9.wav\n", "latin1.csv: not a readable CSV manifest"),
    "nopath.jsonl": ('{"file": "a.wav"}\n', "nopath.jsonl:1: no 'path'"),
    "number.jsonl": ('{"path": 3}\n', "number.jsonl:1: no 'path'"),
    "list.jsonl": ('["a.wav"]\n', "list.jsonl:1: expected a JSON object with a 'path' key"),
    "broken.jsonl": ('{"path": "a.wav"}\n{"path": \n', "broken.jsonl:2: not valid JSON"),
    "empty.jsonl": ("\n\n", "empty.jsonl: the manifest lists no files"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_manifest_is_one_line_naming_it(tmp_path: Path, name: str) -> None:
    content, message = BAD[name]
    manifest = tmp_path / name
    manifest.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ManifestError) as caught:
        list(manifest_rows(manifest))
    assert str(caught.value).startswith(str(tmp_path / message)) and "\n" not in str(caught.value)
    assert isinstance(caught.value, InputError)  # the user's input: exit status 2


@pytest.mark.parametrize("reader", list(READERS))
def test_a_manifest_one_reader_refuses_every_reader_refuses(
    tmp_path: Path, clips: list[Path], reader: str
) -> None:
    """A headerless CSV was once a list of paths to the benchmark and an error to training."""
    manifest = tmp_path / "list.csv"
    manifest.write_text("a.wav\nsub/b.flac\n")
    with pytest.raises(InputError, match="no 'path' column in the header row"):
        READERS[reader](manifest)
