"""What ``codec tokenize`` reads: folders, audio files and manifests, listed as :class:`Item` rows.

* a folder is searched recursively for audio files (sorted, so every run lists the same
  items in the same order; symbolic links to folders are followed, see
  :func:`codec.formats.audio_files`); an item's id is its path relative to the folder, without
  suffix;
* a file that is not a manifest is one item; its id is its name without suffix (as a folder
  holding it would name it: the same whatever folder the command runs from);
* a manifest (read by :mod:`codec.manifest`, as for training and the benchmark) is a ``.csv``
  (header row) or ``.jsonl`` (one object per line) with a ``path`` column and optionally an
  ``id`` column; every other column is metadata, carried into the output (a column named
  like an output column, e.g. ``sample_rate``, is carried as ``manifest_sample_rate``).
  Relative paths are taken from the manifest's folder.

Ids must be unique over all inputs (they name the rows of the output).  Paths are kept
absolute and normalised (``..`` removed; symbolic links not resolved), so a rerun from another
folder, with the inputs typed relative to it, is the same run and the output's ``path`` column
can be read from anywhere.  A path that is not UTF-8 is kept as :func:`codec.formats.path_text`
writes it (reversible), an id as :func:`codec.formats.printable` shows it.  JSON integers
outside int64 are carried as text.  Missing or unreadable
audio named by a manifest is not an error here: it is found when the file is read, and goes
to the run's errors report.  Problems with the inputs themselves (a missing folder, a
manifest without a ``path`` column, a duplicate id) are :class:`~codec.errors.UsageError` or
:class:`~codec.manifest.ManifestError` (both the user's input: exit status 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codec.errors import UsageError
from codec.formats import MANIFEST_SUFFIXES, audio_files, path_text, printable
from codec.manifest import manifest_rows, resolve_entry

# Columns every output row has; a manifest's metadata may not reuse these names.
RESERVED = frozenset({"id", "path", "sample_rate", "num_samples", "duration", "num_frames", "num_codebooks",
                      "codes", "model", "fingerprint"})  # fmt: skip


@dataclass(frozen=True)
class Item:
    """One input: a stable ``id``, the audio ``path`` and the manifest's other columns."""

    id: str
    path: str
    meta: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Listing:
    """Every input item, in a fixed order, and the metadata columns with their types.

    Attributes:
        items: the items (ids unique).
        columns: metadata column name -> ``"int"``, ``"float"``, ``"bool"`` or ``"string"``.
    """

    items: list[Item]
    columns: dict[str, str]

    def digest(self) -> str:
        """sha256 of every item (id, path, metadata): a changed input list changes it."""
        h = hashlib.sha256(json.dumps(self.columns, sort_keys=True).encode())
        for item in self.items:
            h.update(json.dumps([item.id, item.path, list(item.meta)], default=str).encode() + b"\n")
        return h.hexdigest()


def list_inputs(inputs: Iterable[str]) -> Listing:
    """List every item the inputs name (see the module docstring); raises ``UsageError``."""
    items: list[Item] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            items += _folder_items(path)
        elif path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            items += list(_manifest_items(path))
        elif path.is_file():
            items.append(Item(printable(path.stem), _stored(path)))
        else:
            raise UsageError(f"{path}: no such file or folder")
    if not items:
        raise UsageError("no input items")
    _check_unique(items)
    return Listing(items, column_types(items))


def _folder_items(folder: Path) -> list[Item]:
    found = audio_files(folder)
    if not found:
        raise UsageError(f"{folder}: no audio files in this folder")
    base = _absolute(folder)
    return [
        Item(
            printable(p.relative_to(folder).with_suffix("").as_posix()),
            path_text(base / p.relative_to(folder)),
        )
        for p in found
    ]


def _absolute(path: Path) -> Path:
    """``path`` absolute with ``..`` and ``.`` removed: the same text however it was typed.

    Only where that is still the same file: through a symbolic link, ``link/..`` is the link
    target's parent, and then the path is resolved instead."""
    plain = Path(os.path.normpath(path.absolute()))
    try:
        same = plain == path.absolute() or os.path.samefile(plain, path)
    except OSError:  # missing (a manifest's entry): nothing else to compare with
        same = True
    return plain if same else path.resolve()


def _stored(path: Path) -> str:
    return path_text(_absolute(path))


def _manifest_items(manifest: Path) -> Iterator[Item]:
    for where, row in manifest_rows(manifest):
        row = dict(row)
        path = row.pop("path")
        ident = row.pop("id", None)
        if ident is None or str(ident).strip() == "":
            ident = Path(path).with_suffix("").as_posix()
        full = resolve_entry(manifest, path)
        yield Item(str(ident), _stored(full), tuple(sorted(_metadata(row, where).items())))


def _metadata(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A row's metadata columns, an output column's name prefixed with ``manifest_``."""
    meta = {}
    for key, value in row.items():
        name = f"manifest_{key}" if key in RESERVED else key
        if name in meta or (name != key and name in row):
            raise UsageError(
                f"{where}: columns {key!r} and {name!r} would both be carried as {name!r} "
                f"(the output has its own {key!r}); rename one"
            )
        meta[name] = value
    return meta


def _check_unique(items: list[Item]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        if item.id in seen:
            raise UsageError(
                f"duplicate id {item.id!r} ({seen[item.id]} and {item.path}); "
                "give unique ids in a manifest's 'id' column"
            )
        seen[item.id] = item.path


def column_types(items: Iterable[Item]) -> dict[str, str]:
    """The type of each metadata column over all items: the narrowest that holds every value.

    Missing values are nulls; a column mixing kinds (or holding lists/objects) is a string
    column, its non-string values written as JSON.
    """
    kinds: dict[str, set[str]] = {}
    for item in items:
        for key, value in item.meta:
            kinds.setdefault(key, set())
            if value is not None:
                kinds[key].add(_kind(value))
    out = {}
    for key, seen in sorted(kinds.items()):
        if seen <= {"int"}:
            out[key] = "int" if seen else "string"
        elif seen <= {"int", "float"}:
            out[key] = "float"
        elif seen == {"bool"}:
            out[key] = "bool"
        else:
            out[key] = "string"
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        # Arrow's int64 holds what a JSON number may not (123456789012345678901234): as text.
        return "int" if -(1 << 63) <= value < (1 << 63) else "json"
    if isinstance(value, float):
        return "float"
    return "string" if isinstance(value, str) else "json"


def cast_value(value: Any, kind: str) -> Any:
    """A metadata value as its column's type (see :func:`column_types`)."""
    if value is None:
        return None
    if kind == "float":
        return float(value)
    if kind == "string" and not isinstance(value, str):
        return json.dumps(value)
    return value
