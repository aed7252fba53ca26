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
``_plan.parquet``             the plan (:mod:`codec.data.plan`), kept so a rerun resumes it
============================  ===============================================================

Every file is written through :func:`codec.atomic.atomic_write` (temporary file, then rename):
a killed run leaves whole shards and at most some temporary files, which the next writer of
the same name removes.  Codes are int16, frame-major: ``codes[f * K + k]`` is codebook ``k``
of frame ``f``.  Shards are plain Parquet: pyarrow, Hugging Face ``datasets``, DuckDB, Spark
and Polars read them as they are.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from codec.atomic import atomic_write
from codec.data.plan import ARROW_TYPES, Plan

INDEX_NAME = "index.json"
ERRORS_NAME = "errors.csv"
FORMAT = "codec-tokens"
FORMAT_VERSION = 1
SHARD_META = b"codec.shard"


SHARD_DIR = "shards"


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
    compression = {name: ("none" if name == "codes" else "zstd") for name in schema.names}
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression=compression), ".parquet")


@dataclass(frozen=True)
class ShardInfo:
    """A committed shard: its rows, the errors it recorded and its audio duration in seconds."""

    shard: int
    rows: int
    errors: list[tuple[str, str, str]]


def shard_info(folder: Path, plan: Plan, shard: int, planned: int) -> ShardInfo | None:
    """The shard if it is committed, of this plan, and accounts for all ``planned`` items; else None."""
    path = folder / shard_name(shard)
    try:
        meta = json.loads(pq.read_schema(path).metadata[SHARD_META])
        rows = pq.read_metadata(path).num_rows
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        return None
    errors = [tuple(e) for e in meta.get("errors", [])]
    if meta.get("plan") != plan.digest or meta.get("shard") != shard or rows + len(errors) != planned:
        return None
    return ShardInfo(shard, rows, errors)


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
    return index
