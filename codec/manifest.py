"""The one manifest reader: a table of audio paths that ``codec tokenize``, ``codec train`` and
``codec bench`` all take in place of a folder, with the same rules for each.

* a ``.csv`` manifest has a header row with a ``path`` column (a CSV without one is refused:
  its first row would be taken for data by one reader and for names by another);
* a ``.jsonl`` manifest holds one JSON object with a ``path`` key per line (blank lines skipped);
* every row names a non-empty path; a relative one is taken from the manifest's folder;
* other columns (an ``id``, metadata) are the caller's: :func:`manifest_rows` gives them,
  :func:`manifest_paths` only the paths;
* a manifest that lists no file is an error.

Problems are :class:`ManifestError` lines naming the manifest and, where there is one, the line.
Whether the listed files exist is not checked here: each reader finds that when it reads them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codec.errors import InputError


class ManifestError(InputError):
    """A manifest that cannot be read as a table of audio paths; the message says where and why."""


def manifest_rows(manifest: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every row of ``manifest`` as ``(where, row)``: ``where`` is ``"file:line"`` for messages,
    ``row`` the columns (a CSV's empty fields are ``None``), ``row["path"]`` a non-empty string.

    Raises:
        ManifestError: unreadable, no ``path`` column or key, a row without a path, no rows.
    """
    manifest = Path(manifest)
    rows = _csv_rows(manifest) if manifest.suffix.lower() == ".csv" else _jsonl_rows(manifest)
    count = 0
    for where, row in rows:
        path = row.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ManifestError(f"{where}: no 'path' (every row needs the audio file's path)")
        count += 1
        yield where, row
    if count == 0:
        raise ManifestError(f"{manifest}: the manifest lists no files")


def manifest_paths(manifest: str | Path) -> list[Path]:
    """The audio paths ``manifest`` lists, in its order (relative ones from its folder)."""
    manifest = Path(manifest)
    return [resolve_entry(manifest, row["path"]) for _, row in manifest_rows(manifest)]


def resolve_entry(manifest: Path, path: str) -> Path:
    """A listed ``path``: as written when absolute, else relative to the manifest's folder."""
    return Path(path) if Path(path).is_absolute() else manifest.parent / path


def _csv_rows(manifest: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise ManifestError(f"{manifest}: no 'path' column in the header row")
            for n, row in enumerate(reader, 2):
                if None in row:
                    raise ManifestError(f"{manifest}:{n}: more fields than the header names")
                yield f"{manifest}:{n}", {k: (None if v == "" else v) for k, v in row.items()}
    except (UnicodeDecodeError, csv.Error) as err:
        raise ManifestError(f"{manifest}: not a readable CSV manifest ({err})") from None
    except OSError as err:
        raise ManifestError(f"{manifest}: cannot read the manifest ({err.strerror or err})") from None


def _jsonl_rows(manifest: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with manifest.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ManifestError(f"{manifest}:{n}: not valid JSON ({err.msg})") from None
                if not isinstance(row, dict):
                    raise ManifestError(f"{manifest}:{n}: expected a JSON object with a 'path' key")
                yield f"{manifest}:{n}", row
    except UnicodeDecodeError as err:
        raise ManifestError(f"{manifest}: not a readable JSONL manifest ({err.reason})") from None
    except OSError as err:
        raise ManifestError(f"{manifest}: cannot read the manifest ({err.strerror or err})") from None


__all__ = ["ManifestError", "manifest_paths", "manifest_rows", "resolve_entry"]
