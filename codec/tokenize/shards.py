"""The output of ``codec tokenize``: Parquet shards, an errors report and ``index.json``.

============================  ===============================================================
file                          what
============================  ===============================================================
``shards/shard-NNNNN.parquet`` one row per item (columns: :func:`output_schema`); the shard's
                              number, the plan's digest and the items that failed are in its
                              key-value metadata, so a shard and its errors commit together
``errors.csv``                ``id,path,reason`` of every item that could not be tokenized
``index.json``                the model, the shards (rows, bytes, sha256 each), totals;
                              written last: its presence means the run is complete
``_plan.parquet``             the plan (:mod:`codec.tokenize.plan`), kept so a rerun resumes it
============================  ===============================================================

Every file is written through :func:`codec.atomic.atomic_write` (temporary file, then rename):
a killed run leaves whole shards and at most some temporary files, which the next writer of
the same name removes.  Codes are int16, frame-major: ``codes[f * K + k]`` is codebook ``k``
of frame ``f``.  Shards are plain Parquet: pyarrow, Hugging Face ``datasets``, DuckDB, Spark
and Polars read them as they are.

Integrity: shards carry Parquet page checksums (a rerun after a kill reads the committed ones
against them), ``index.json`` records each shard's size and sha256 (a rerun of a complete
output and :class:`codec.tokenize.TokenDataset` at open compare them: :func:`shard_problem`), and
shards that cannot belong to the run (its plan deleted, past its last shard) are removed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from codec.atomic import LOCK_SUFFIX, TEMP_MARK, atomic_write
from codec.errors import InputError, UsageError
from codec.tokenize.plan import ARROW_TYPES, PLAN_NAME, Plan

INDEX_NAME = "index.json"
ERRORS_NAME = "errors.csv"
FORMAT = "codec-tokens"
FORMAT_VERSION = 1
SHARD_META = b"codec.shard"


SHARD_DIR = "shards"
_SHARD_FILE = re.compile(r"shard-\d{5,}\.parquet")


class ShardError(InputError):
    """A shard of a tokenize output is missing, damaged, or not the one its index lists."""


def shard_name(shard: int) -> str:
    """The shard's path relative to the output folder."""
    return f"{SHARD_DIR}/shard-{shard:05d}.parquet"


def output_schema(columns: dict[str, str]) -> pa.Schema:
    """The row schema: fixed columns, then the manifest's metadata columns."""
    return pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("path", pa.string()),
            pa.field("sample_rate", pa.int32()),
            pa.field("num_samples", pa.int64()),
            pa.field("duration", pa.float64()),
            pa.field("num_frames", pa.int32()),
            pa.field("num_codebooks", pa.int16()),
            pa.field("codes", pa.list_(pa.int16())),
            pa.field("model", pa.string()),
            pa.field("fingerprint", pa.string()),
            *(pa.field(c, ARROW_TYPES[t]) for c, t in columns.items()),
        ]
    )


@dataclass(frozen=True)
class Row:
    """One tokenized item: ``codes [K, F]`` (numpy, any integer type) and what it came from."""

    id: str
    path: str
    sample_rate: int
    num_samples: int
    codes: np.ndarray
    meta: dict[str, Any]


def write_shard(
    folder: Path,
    plan: Plan,
    shard: int,
    rows: list[Row],
    errors: list[tuple[str, str, str]],
    model: dict,
    rank: int = 0,
) -> Path:
    """Write one shard atomically: ``rows`` and, in its metadata, the ``(id, path, reason)`` errors.

    Args:
        model: ``name``, ``fingerprint`` (and the rest of the index's model entry).
        rank: the process that wrote it (recorded, for the record only).
    """
    flat = [np.ascontiguousarray(r.codes.T, dtype=np.int16).reshape(-1) for r in rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum([len(f) for f in flat], out=offsets[1:])
    values = np.concatenate(flat) if flat else np.zeros(0, np.int16)
    data = {
        "id": [r.id for r in rows],
        "path": [r.path for r in rows],
        "sample_rate": [r.sample_rate for r in rows],
        "num_samples": [r.num_samples for r in rows],
        "duration": [r.num_samples / r.sample_rate for r in rows],
        "num_frames": [int(r.codes.shape[1]) for r in rows],
        "num_codebooks": [int(r.codes.shape[0]) for r in rows],
        "codes": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.int16())),
        "model": [model["name"]] * len(rows),
        "fingerprint": [model["fingerprint"]] * len(rows),
        **{c: [r.meta.get(c) for r in rows] for c in plan.columns},
    }
    meta = {
        "plan": plan.digest,
        "shard": shard,
        "rank": rank,
        "rows": len(rows),
        "errors": [list(e) for e in errors],
    }
    schema = output_schema(plan.columns).with_metadata({SHARD_META: json.dumps(meta)})
    table = pa.table(data, schema=schema)
    path = folder / shard_name(shard)
    # Codes are high-entropy: stored uncompressed (memory-mappable, fast to read); the rest zstd.
    # Page checksums let a rerun find a damaged shard before the index (and its sha256) exists.
    compression = {name: ("none" if name == "codes" else "zstd") for name in schema.names}

    def write(tmp: Path) -> None:
        pq.write_table(table, tmp, compression=compression, write_page_checksum=True)

    return atomic_write(path, write, ".parquet")


@dataclass(frozen=True)
class ShardInfo:
    """A committed shard: its rows, the errors it recorded and its audio duration in seconds."""

    shard: int
    rows: int
    errors: list[tuple[str, str, str]]


def shard_info(folder: Path, plan: Plan, shard: int, planned: int, verify: bool = False) -> ShardInfo | None:
    """The shard if it is committed, of this plan, and accounts for all ``planned`` items; else None.

    ``verify``: also read every page against its checksum (a damaged shard is then None).
    """
    path = folder / shard_name(shard)
    try:
        meta = json.loads(pq.read_schema(path).metadata[SHARD_META])
        rows = pq.read_metadata(path).num_rows
        if verify:
            pq.read_table(path, page_checksum_verification=True)
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        return None
    errors = [tuple(e) for e in meta.get("errors", [])]
    if meta.get("plan") != plan.digest or meta.get("shard") != shard or rows + len(errors) != planned:
        return None
    return ShardInfo(shard, rows, errors)


def shard_problem(folder: Path, entry: dict[str, Any], digest: bool = True) -> str | None:
    """What is wrong with a shard ``index.json`` lists (``entry``), or None.

    Checks that it is there with the size listed and, with ``digest``, its sha256.
    """
    path = Path(folder) / entry["file"]
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path}: missing (listed in {INDEX_NAME})"
    except OSError as err:
        return f"{path}: unreadable ({err.strerror})"
    if size != entry["bytes"]:
        return f"{path}: {size} bytes where {INDEX_NAME} lists {entry['bytes']} (damaged or replaced)"
    if digest and sha256_file(path) != entry["sha256"]:
        return f"{path}: contents differ from {INDEX_NAME}'s sha256 (damaged or replaced)"
    return None


def reopen_if_damaged(folder: Path, index: dict[str, Any]) -> list[str]:
    """A rerun of a complete output: check every shard against the index.  When some are
    missing or damaged, the output is made incomplete again (``index.json`` removed first,
    then the damaged shards) so the run redoes them; returns what was wrong."""
    folder = Path(folder)
    try:
        entries = _checked_shards(index, folder / INDEX_NAME)
    except ValueError as err:  # the shards are then checked as after a killed run
        (folder / INDEX_NAME).unlink(missing_ok=True)
        return [str(err)]
    damaged = [(entry, problem) for entry in entries if (problem := shard_problem(folder, entry))]
    if damaged:
        (folder / INDEX_NAME).unlink(missing_ok=True)
        for entry, _ in damaged:
            (folder / entry["file"]).unlink(missing_ok=True)
    return [problem for _, problem in damaged]


def forget_outputs(folder: Path) -> int:
    """Remove the shards, ``errors.csv`` and ``index.json`` a run whose plan is gone left (their
    rows cannot be checked against any plan); returns how many shards there were."""
    folder = Path(folder)
    (folder / INDEX_NAME).unlink(missing_ok=True)
    shards = sorted((folder / SHARD_DIR).glob("shard-*.parquet"))
    for path in shards:
        path.unlink()
    (folder / ERRORS_NAME).unlink(missing_ok=True)
    return len(shards)


def remove_stray_shards(folder: Path, num_shards: int) -> list[Path]:
    """Shard files that are not one of the plan's ``num_shards`` (a bigger earlier run's, a
    copy): dataset readers that take the whole folder would read them.  Removed; returns them."""
    keep = {Path(shard_name(s)).name for s in range(num_shards)}
    stray = [p for p in sorted((Path(folder) / SHARD_DIR).glob("shard-*.parquet")) if p.name not in keep]
    for path in stray:
        path.unlink(missing_ok=True)
    return stray


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_errors(folder: Path, errors: list[tuple[str, str, str]]) -> Path:
    """``errors.csv``: a header and one ``id,path,reason`` line per failed item."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["id", "path", "reason"])
    writer.writerows(sorted(errors))
    data = text.getvalue().encode()
    return atomic_write(folder / ERRORS_NAME, lambda tmp: tmp.write_bytes(data))


def write_index(folder: Path, plan: Plan, model: dict, infos: list[ShardInfo]) -> dict[str, Any]:
    """Checksum every shard and write ``index.json`` (the mark of a complete run); returns it."""
    shards, seconds, frames = [], 0.0, 0
    for info in infos:
        path = folder / shard_name(info.shard)
        stats = pq.read_table(path, columns=["duration", "num_frames"])
        seconds += float(pc.sum(stats["duration"]).as_py() or 0.0)
        frames += int(pc.sum(stats["num_frames"]).as_py() or 0)
        size = path.stat().st_size
        shards.append(
            {"file": shard_name(info.shard), "rows": info.rows, "bytes": size, "sha256": sha256_file(path)}
        )
    errors = plan.errors() + [e for info in infos for e in info.errors]
    write_errors(folder, errors)
    index = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "plan": plan.digest,
        "model": model,
        "columns": output_schema(plan.columns).names,
        "codes_layout": "int16, frame-major: codes[f * num_codebooks + k]",
        "shards": shards,
        "items": sum(s["rows"] for s in shards),
        "hours": seconds / 3600,
        "frames": frames,
        "tokens": frames * plan.key["num_codebooks"],
        "errors": len(errors),
        "errors_file": ERRORS_NAME,
    }
    data = (json.dumps(index, indent=1) + "\n").encode()
    atomic_write(folder / INDEX_NAME, lambda tmp: tmp.write_bytes(data))
    return index


def read_index(folder: str | Path) -> dict[str, Any]:
    """The ``index.json`` of a complete tokenize output; ``ValueError`` naming the problem."""
    path = Path(folder) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{folder}: no {INDEX_NAME} (not a complete `codec tokenize` output)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable index ({err})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{path}: not a `codec tokenize` index")
    if index.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: index version {index.get('version')} (this library reads {FORMAT_VERSION})"
        )
    _checked_shards(index, path)
    return index


def _checked_shards(index: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The index's shard entries, each checked (a file under ``shards/``, counts, a digest)."""
    shards = index.get("shards")
    if not isinstance(shards, list):
        raise ValueError(f"{path}: no list of shards")
    for n, entry in enumerate(shards):
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("file"), str)
            and entry["file"].startswith(f"{SHARD_DIR}/")
            and _SHARD_FILE.fullmatch(entry["file"][len(SHARD_DIR) + 1 :]) is not None
            and all(type(entry.get(k)) is int and entry[k] >= 0 for k in ("rows", "bytes"))
            and isinstance(entry.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) is not None
        )
        if not ok:
            raise ValueError(f"{path}: shard entry {n} is malformed ({entry!r:.80})")
    return shards


def _is_ours(path: Path) -> bool:
    """Whether a top-level entry of an output folder is something a run writes."""
    name = path.name
    if name in (PLAN_NAME, INDEX_NAME, ERRORS_NAME):
        return True
    if name == SHARD_DIR and path.is_dir():
        return all(_is_shard_file(p) for p in path.iterdir())
    return _is_leftover(path)


def _is_shard_file(path: Path) -> bool:
    return (path.name.startswith("shard-") and path.suffix == ".parquet") or _is_leftover(path)


def _is_leftover(path: Path) -> bool:
    """A temporary or lock file of :class:`codec.atomic.Output` (a killed writer leaves them)."""
    return path.name.startswith(".") and (TEMP_MARK in path.name or path.name.endswith(LOCK_SUFFIX))


def check_empty(out: Path) -> None:
    """Refuse an output folder that holds anything a tokenize run does not write."""
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if not _is_ours(p))
        if other:
            raise UsageError(
                f"{out}: not empty and not a tokenize output (holds {other[0]}); use a new folder"
            )


def remove_run(out: Path) -> None:
    """``--force``: remove what a tokenize run wrote in ``out`` (refused if it holds anything else)."""
    if out.is_dir():
        check_empty(out)
        for path in out.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def clear_leftovers(out: Path) -> None:
    """Temporary and lock files that killed writers left (every writer of this run is done)."""
    for folder in (out, out / SHARD_DIR):
        for path in folder.iterdir() if folder.is_dir() else ():
            if _is_leftover(path):
                with contextlib.suppress(OSError):
                    path.unlink()


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file's contents, or ``None`` (missing, unreadable or not an object)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
