"""The plan of a tokenize run: which item goes to which shard, fixed once and kept in ``_plan.parquet``.

Every item's header is read once (:func:`codec.pipeline.audiofile.audio_info`: rate, length,
truncation); items are sorted by duration and dealt round-robin into shards of at most
``shard_size`` items (and at least as many shards as the first run has processes), so every
shard has the same mix of durations (equal work, and the same length statistics for a reader)
while its own items, kept shortest first, are batched with little padding.  Items whose
header cannot be read are planned as errors (shard -1) with the reason.

The plan is a function of the inputs and the options that change the output (model weights,
number of codebooks, shard size) only, not of the number of processes: shard ``s`` goes to rank
``s % world_size``, so a rerun may use another number of devices and still finds the shards
already written.  Its :attr:`Plan.digest` is stamped on every shard and on the index.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from codec.atomic import atomic_write
from codec.audio import AudioError
from codec.formats import printable, text_path
from codec.pipeline.audiofile import audio_info
from codec.tokenize.inputs import Item, Listing, cast_value

# The leading underscore keeps it out of what pyarrow, Spark and `datasets` take for data files.
PLAN_NAME = "_plan.parquet"
PLAN_VERSION = 1
# Most padding a batch may carry, relative to its valid samples (see batches()).
MAX_PADDING = 0.1
ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string()}


@dataclass(frozen=True)
class PlannedItem:
    """One item of a shard: ``num_samples`` at ``sample_rate`` as the header declares them
    (``None``: not declared, known only once read)."""

    id: str
    path: str
    meta: dict[str, Any]
    sample_rate: int
    num_samples: int | None


@dataclass(frozen=True)
class Plan:
    """A run's plan: ``key`` (what it was made for), the item table, the shard count."""

    key: dict[str, Any]
    table: pa.Table
    num_shards: int

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the key and of each item's shard: the identity of this run's output."""
        h = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode())
        for ident, shard in zip(self.table["id"].to_pylist(), self.table["shard"].to_pylist(), strict=True):
            h.update(f"{len(ident)}:{ident}:{shard}\n".encode())
        return h.hexdigest()

    @property
    def columns(self) -> dict[str, str]:
        return self.key["columns"]

    def shard_items(self, shard: int) -> list[PlannedItem]:
        """The items of ``shard``, shortest first."""
        rows = self.table.filter(pc.equal(self.table["shard"], shard)).to_pylist()
        return [
            PlannedItem(
                r["id"], r["path"], {c: r[c] for c in self.columns}, r["sample_rate"], r["num_samples"]
            )
            for r in rows
        ]

    def shard_sizes(self) -> list[int]:
        """Items planned per shard."""
        counts = pc.value_counts(self.table["shard"]).to_pylist()
        sizes = dict((c["values"], c["counts"]) for c in counts)
        return [sizes.get(s, 0) for s in range(self.num_shards)]

    def errors(self) -> list[tuple[str, str, str]]:
        """``(id, path, reason)`` of the items whose header could not be read."""
        bad = self.table.filter(pc.equal(self.table["shard"], -1))
        return list(zip(*(bad[c].to_pylist() for c in ("id", "path", "error")), strict=True))


def plan_key(listing: Listing, model: str, fingerprint: str, num_codebooks: int, shard_size: int) -> dict:
    """What a plan is made for; a rerun with another key is a different run."""
    return {
        "version": PLAN_VERSION,
        "inputs": listing.digest(),
        "items": len(listing.items),
        "model": model,
        "fingerprint": fingerprint,
        "num_codebooks": num_codebooks,
        "shard_size": shard_size,
        "columns": listing.columns,
    }


@dataclass(frozen=True)
class Headers:
    """What the headers of some items of a listing say: their positions in it, rates, lengths
    (-1: not declared) and the reasons of those that could not be read, by position."""

    index: np.ndarray
    rates: np.ndarray
    samples: np.ndarray
    errors: dict[int, str]


def read_headers(items: list[Item], index: range, progress: Callable[[Iterable], Iterable] = iter) -> Headers:
    """Read the headers of ``items[i]`` for ``i`` in ``index`` (a process's slice of a listing).

    Args:
        items: the listing's items.
        index: which of them.
        progress: wraps the items while their headers are read (a progress bar).
    """
    rates = np.zeros(len(index), np.int64)
    samples = np.full(len(index), -1, np.int64)  # -1: not declared by the header
    errors: dict[int, str] = {}
    for n, i in enumerate(progress(index)):
        rate, length, error = _header(items[i])
        rates[n], samples[n] = rate, length
        if error is not None:
            errors[i] = error
    return Headers(np.asarray(index, np.int64), rates, samples, errors)


def make_plan(
    listing: Listing,
    key: dict,
    progress: Callable[[Iterable], Iterable] = iter,
    min_shards: int = 1,
    headers: list[Headers] | None = None,
) -> Plan:
    """Read every header, sort by duration, deal into shards (see the module docstring).

    Built column by column (numbers in numpy arrays, one Arrow table), never as a Python
    object per item: the plan is the only part of a run that grows with the number of
    items, so it stays at about the size of its own Parquet file.

    Args:
        listing: the items.
        key: from :func:`plan_key` (its ``shard_size``).
        progress: wraps the items while their headers are read (a progress bar).
        min_shards: at least this many shards (the processes of the first run), as far as
            there are items, so that every process has work.
        headers: the headers already read (by several processes, each a slice), which together
            cover every item once; by default this reads them all.
    """
    items = listing.items
    if headers is None:
        headers = [read_headers(items, range(len(items)), progress)]
    rates = np.zeros(len(items), np.int64)
    samples = np.full(len(items), -1, np.int64)
    seen = np.zeros(len(items), np.int64)
    errors: dict[int, str] = {}
    for part in headers:
        rates[part.index], samples[part.index] = part.rates, part.samples
        np.add.at(seen, part.index, 1)
        errors.update(part.errors)
    if not (seen == 1).all():
        raise ValueError("the headers read do not cover every item exactly once")
    table = _item_table(listing, key, rates, samples, errors)
    ok = table.filter(pc.is_null(table["error"]))
    num_shards = min(ok.num_rows, max(-(-ok.num_rows // key["shard_size"]), min_shards))
    # Shortest first, undeclared lengths last (batched alone: their length is known only once read).
    seconds = pc.divide(pc.cast(ok["num_samples"], pa.float64()), pc.cast(ok["sample_rate"], pa.float64()))
    ok = ok.append_column("_unknown", pc.is_null(seconds)).append_column("_seconds", seconds)
    ok = ok.sort_by([("_unknown", "ascending"), ("_seconds", "ascending"), ("id", "ascending")])
    # Dealt round-robin: every shard spans all durations (equal work per shard, and the same mix
    # of lengths for a reader of any shard), each still sorted shortest first.
    shard = np.arange(ok.num_rows, dtype=np.int32) % max(num_shards, 1)
    ok = ok.drop_columns(["_unknown", "_seconds"]).set_column(
        ok.schema.get_field_index("shard"), "shard", pa.array(shard, pa.int32())
    )
    bad = table.filter(pc.invert(pc.is_null(table["error"])))
    return Plan(key, pa.concat_tables([ok, bad]).combine_chunks(), num_shards)


def _item_table(
    listing: Listing, key: dict, rates: np.ndarray, samples: np.ndarray, errors: dict[int, str]
) -> pa.Table:
    """The plan's table in listing order (shard -1 for now)."""
    items, columns = listing.items, key["columns"]
    fields = [
        pa.field("id", pa.string()),
        pa.field("path", pa.string()),
        *(pa.field(c, ARROW_TYPES[t]) for c, t in columns.items()),
        pa.field("sample_rate", pa.int64()),
        pa.field("num_samples", pa.int64()),
        pa.field("shard", pa.int32()),
        pa.field("error", pa.string()),
    ]
    failed = np.zeros(len(items), bool)
    failed[list(errors)] = True
    data = {
        "id": pa.array([i.id for i in items], pa.string()),
        "path": pa.array([i.path for i in items], pa.string()),
        **{
            c: pa.array([cast_value(dict(i.meta).get(c), t) for i in items], ARROW_TYPES[t])
            for c, t in columns.items()
        },
        "sample_rate": pa.array(rates, pa.int64(), mask=failed),
        "num_samples": pa.array(samples, pa.int64(), mask=failed | (samples < 0)),
        "shard": pa.array(np.full(len(items), -1, np.int32), pa.int32()),
        "error": pa.array([errors.get(n) for n in range(len(items))], pa.string()),
    }
    schema = pa.schema(fields, metadata={"codec.plan": json.dumps(key)})
    return pa.table(data, schema=schema)


def _header(item: Item) -> tuple[int, int, str | None]:
    """``(sample_rate, num_samples or -1, None)``, or ``(0, -1, reason)`` when unreadable."""
    path = text_path(item.path)
    try:
        info = audio_info(path)
    except AudioError as err:
        return 0, -1, reason(err, path)
    except OSError as err:  # audio_info turns the usual ones into AudioError; be safe
        return 0, -1, f"cannot read ({err.strerror or err})"
    return info.sample_rate, -1 if info.num_samples is None else info.num_samples, None


def reason(err: BaseException, path: str) -> str:
    """An error's message without the leading ``PATH: `` the pipeline's errors carry (printable)."""
    text = " ".join(str(err).split()) or type(err).__name__
    prefix = f"{path}: "
    return printable(text[len(prefix) :] if text.startswith(prefix) else text)


def save_plan(plan: Plan, folder: Path) -> Path:
    """Write ``_plan.parquet`` atomically."""
    return atomic_write(folder / PLAN_NAME, lambda tmp: pq.write_table(plan.table, tmp), suffix=".parquet")


def load_plan(folder: Path) -> Plan | None:
    """The plan saved in ``folder``, or ``None`` when there is none (or it is not ours)."""
    path = folder / PLAN_NAME
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        key = json.loads(table.schema.metadata[b"codec.plan"])
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        return None
    ok = pc.max(table["shard"]).as_py()
    return Plan(key, table, 0 if ok is None or ok < 0 else ok + 1)


def batches(lengths: list[int | None], max_samples: int, max_padding: float = MAX_PADDING) -> list[list[int]]:
    """Indices of ``lengths`` (ascending, model-rate samples) grouped into batches.

    A batch takes the next item while, padded to its longest item, it stays within
    ``max_samples`` and its padding within ``max_padding`` of its valid samples; so items of
    very different lengths are not batched together even when the budget would allow it
    (padding costs compute like audio does).  A batch has at least one item; an unknown length
    (``None``) is a batch of its own.
    """
    out: list[list[int]] = []
    current: list[int] = []
    longest = total = 0
    for i, n in enumerate(lengths):
        if n is None:
            out.append([i])
            continue
        padded = (len(current) + 1) * max(longest, n)
        if current and (padded > max_samples or padded > (total + n) * (1 + max_padding)):
            out.append(current)
            current, longest, total = [], 0, 0
        current.append(i)
        longest, total = max(longest, n), total + n
    if current:
        out.append(current)
    return out
