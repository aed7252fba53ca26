"""File names, in one place and free of heavy imports (so the command line can sort its inputs
before PyTorch loads): the suffixes the commands recognise, the one walker of input folders,
and how a path that is not UTF-8 is written as text.

* :func:`audio_files` lists a folder for ``codec encode DIR``, ``codec tokenize``, the training
  data and ``codec bench``: recursively, in sorted order, following symbolic links to folders
  (a link to a folder it is already inside, a loop, is not followed again);
* file names are bytes, and not every name decodes as UTF-8 (``$'\\xff'.flac``); Python holds
  such a name with surrogate characters that no UTF-8 writer (Parquet, CSV, JSON, HTML) takes.
  :func:`path_text` writes a path as text that :func:`text_path` turns back into the same
  path; :func:`printable` is for names that are only shown (ids, messages, report rows).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

# What libsndfile reads and `codec encode DIR` / `codec tokenize DIR` pick up in a folder; raw
# headerless files are left out (they need a rate and a sample format given).
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                            ".au", ".w64", ".rf64", ".caf"})  # fmt: skip
# Manifests: a table of paths (a `path` column) with optional ids and metadata.
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
# Marks a path written percent-encoded (an absolute path as such starts with "/").
_ENCODED = "%2F"


def audio_files(folder: str | Path, suffixes: frozenset[str] = AUDIO_SUFFIXES) -> list[Path]:
    """Every file under ``folder`` whose suffix is in ``suffixes`` (any case), sorted.

    Symbolic links to folders are followed, except a link to a folder it is already inside
    (which would list the same files forever).  The paths keep the names they were found under
    (``folder/link/x.wav``, not the link's target), so they mirror the tree as it looks.
    """
    root = Path(folder)
    found: list[Path] = []
    stack = [(root, frozenset({_identity(root)}))]
    while stack:
        current, inside = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue  # an unreadable folder: its files cannot be listed (nor read)
        for entry in entries:
            path = current / entry.name
            if _is_dir(entry):
                key = _identity(path)
                if key not in inside:
                    stack.append((path, inside | {key}))
            elif path.suffix.lower() in suffixes:
                found.append(path)
    return sorted(found)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link
    except OSError:
        return False


def _identity(folder: Path) -> tuple[int, int]:
    st = folder.stat()
    return st.st_dev, st.st_ino


def path_text(path: str | Path) -> str:
    """``path`` as text: itself when its bytes are UTF-8, else percent-encoded (reversible by
    :func:`text_path`).  An encoded absolute path starts with ``%2F`` instead of ``/``:
    ``/data/\\xff.flac`` becomes ``%2Fdata/%FF.flac`` (a relative path that is not UTF-8 is
    made absolute first)."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raw = raw if raw.startswith(b"/") else os.fsencode(os.path.abspath(path))
        return _ENCODED + quote_from_bytes(raw[1:], safe="/")


def text_path(text: str) -> str:
    """The path :func:`path_text` wrote as ``text`` (a ``str`` to open: surrogates stand for
    the bytes that are not UTF-8)."""
    if not text.startswith(_ENCODED):
        return text
    return os.fsdecode(b"/" + unquote_to_bytes(text[len(_ENCODED) :]))


def printable(text: str) -> str:
    """``text`` with the bytes of a file name that are not UTF-8 shown as ``\\xNN`` (for ids,
    messages and reports: what a UTF-8 writer can take; not reversible)."""
    return os.fsencode(text).decode("utf-8", "backslashreplace") if _has_surrogates(text) else text


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)
