"""LM training data from a ``codec tokenize`` output: :class:`TokenDataset` and :class:`IterableTokenDataset`.

Both yield one dict per item::

    {"id": str, "codes": LongTensor [K, F], "length": int (valid frames),
     "start_frame": int, "start_time": float (s, where the crop starts in the file),
     "path": str, "duration": float, "sample_rate": int, "num_samples": int, <metadata columns>}

With ``max_frames``, longer items are cropped to ``max_frames`` (from the start, or at a
random offset with ``random_crop``: a new one every epoch, see :mod:`codec.tokenize.items`), and
with ``pad=True`` shorter ones are padded with ``pad_value`` up to it, so items stack into a
batch; ``length`` then says how many frames are real.  Without padding,
:func:`codec.tokenize.collate_tokens` batches items of different lengths.

Opening checks the output: every shard ``index.json`` lists must be there with its size and
(``verify=True``, the default) its sha256, so a missing, damaged or replaced shard is named
when the dataset is made, not mid-epoch (:class:`codec.tokenize.shards.ShardError`).

:class:`TokenDataset` is map-style (random access; split it across ranks with a
``DistributedSampler``).  :class:`IterableTokenDataset` streams shard by shard and splits the
work itself: over ``world_size * num_workers`` consumers (rank from ``torch.distributed`` when
initialised, worker from the ``DataLoader``), whole shards each when there are enough shards,
else every consumer-th row.  Consumers may get a few items more or fewer than each other.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from codec.tokenize.items import Items
from codec.tokenize.shards import ShardError, read_index, shard_problem

_SKIP = {"codes", "num_frames", "num_codebooks", "model", "fingerprint"}
_RERUN = "rerun the `codec tokenize` command that made it: it redoes missing and damaged shards"


class _Shards:
    """The shards of an output (checked at open), opened on demand (a few kept, memory-mapped)."""

    def __init__(self, root: str | Path, keep_open: int = 2, verify: bool = True) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        for entry in self.index["shards"]:
            problem = shard_problem(self.root, entry, digest=verify)
            if problem:
                raise ShardError(f"{problem}; {_RERUN}")
        self.files = [self.root / s["file"] for s in self.index["shards"]]
        self.rows = [s["rows"] for s in self.index["shards"]]
        self.starts = [0]
        for rows in self.rows:
            self.starts.append(self.starts[-1] + rows)
        model = self.index.get("model", {})
        self.num_codebooks = int(model["num_codebooks"])
        self.frame_rate = float(model["frame_rate"])
        self.keep_open = keep_open
        self._open: OrderedDict[int, tuple[dict[str, list], np.ndarray, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """``(shard, row)`` of a global item index."""
        shard = bisect.bisect_right(self.starts, index) - 1
        return shard, index - self.starts[shard]

    def shard_rows(self, shard: int) -> int:
        return self.starts[shard + 1] - self.starts[shard]

    def row(self, shard: int, row: int) -> tuple[dict[str, Any], np.ndarray]:
        """The metadata and the codes ``[K, F]`` (int16) of one row."""
        meta, offsets, values = self._load(shard)
        codes = values[offsets[row] : offsets[row + 1]].reshape(-1, self.num_codebooks).T
        return {name: column[row] for name, column in meta.items()}, codes

    def _load(self, shard: int) -> tuple[dict[str, list], np.ndarray, np.ndarray]:
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        path = self.files[shard]
        try:  # damaged since the dataset was opened: the page checksums catch it, named
            table = pq.read_table(path, memory_map=True, page_checksum_verification=True)
        except (OSError, pa.ArrowException) as err:
            raise ShardError(f"{path}: unreadable since the dataset was opened ({err}); {_RERUN}") from None
        if table.num_rows != self.rows[shard]:
            raise ShardError(
                f"{path}: {table.num_rows} rows where index.json lists {self.rows[shard]}; {_RERUN}"
            )
        codes = table["codes"].combine_chunks()
        offsets = codes.offsets.to_numpy(zero_copy_only=False)
        values = codes.values.to_numpy(zero_copy_only=False)
        meta = {c: table[c].to_pylist() for c in table.column_names if c not in _SKIP}
        self._open[shard] = (meta, offsets - offsets[0], values[offsets[0] :])
        while len(self._open) > self.keep_open:
            self._open.popitem(last=False)
        return self._open[shard]


class TokenDataset(torch.utils.data.Dataset):
    """Map-style dataset over a tokenize output (see the module docstring).

    Args:
        root: the output folder (its ``index.json`` lists the shards).
        num_codebooks: keep the first K codebooks, ``1..stored`` (a lower bitrate; default: all).
        max_frames: crop longer items to this many frames.
        pad: pad shorter items with ``pad_value`` to ``max_frames``.
        pad_value: the padding code (e.g. an LM's pad token).
        random_crop: crop at a random offset instead of the start (a new one every epoch;
            :meth:`set_epoch` makes them a function of the epoch instead).
        seed: of the random crops.
        verify: check every shard's sha256 at open (reads the whole output once; ``False``:
            presence and sizes only).
    Raises ``ValueError`` naming the problem for a folder that is not a complete output, for a
    missing or damaged shard (:class:`~codec.tokenize.shards.ShardError`) and for bad arguments.
    """

    def __init__(
        self,
        root: str | Path,
        num_codebooks: int | None = None,
        max_frames: int | None = None,
        pad: bool = False,
        pad_value: int = 0,
        random_crop: bool = False,
        seed: int = 0,
        verify: bool = True,
    ) -> None:
        self.shards = _Shards(root, verify=verify)
        stored, rate = self.shards.num_codebooks, self.shards.frame_rate
        self.items = Items(
            stored, rate, len(self.shards), num_codebooks, max_frames, pad, pad_value, random_crop, seed
        )

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        meta, codes = self.shards.row(*self.shards.locate(index))
        return self.items.make(meta, codes, index)

    def set_epoch(self, epoch: int) -> None:
        """From now on, random crops are a pure function of ``(seed, epoch, item)``."""
        self.items.crops.set_epoch(epoch)


class IterableTokenDataset(torch.utils.data.IterableDataset):
    """Streaming dataset over a tokenize output, split across ranks and workers (module docstring).

    Args: as :class:`TokenDataset`, and
        shuffle: visit shards, and rows within a shard, in an order drawn from ``(seed, epoch)``;
            the epoch is the one :meth:`set_epoch` gave, else the number of earlier passes
            over this object (``DataLoader`` workers that are not persistent get a fresh copy
            each epoch: call :meth:`set_epoch` for a new order then).
        rank, world_size: override the process group's (default: ``torch.distributed``'s, or
            0 of 1); ``0 <= rank < world_size``.
    """

    def __init__(
        self,
        root: str | Path,
        num_codebooks: int | None = None,
        max_frames: int | None = None,
        pad: bool = False,
        pad_value: int = 0,
        random_crop: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        verify: bool = True,
    ) -> None:
        _check_rank(rank, world_size)
        self.shards = _Shards(root, keep_open=1, verify=verify)
        stored, rate = self.shards.num_codebooks, self.shards.frame_rate
        self.items = Items(
            stored, rate, len(self.shards), num_codebooks, max_frames, pad, pad_value, random_crop, seed
        )
        self.shuffle, self.seed = shuffle, seed
        self.rank, self.world_size = rank, world_size
        self._epoch: int | None = None
        self._passes = 0

    def set_epoch(self, epoch: int) -> None:
        """Shuffle order and random crops from now on a pure function of ``(seed, epoch)``."""
        self.items.crops.set_epoch(epoch)
        self._epoch = epoch

    def _consumer(self) -> tuple[int, int]:
        dist = torch.distributed
        ready = dist.is_available() and dist.is_initialized()
        rank = self.rank if self.rank is not None else (dist.get_rank() if ready else 0)
        world = self.world_size if self.world_size is not None else (dist.get_world_size() if ready else 1)
        _check_rank(rank, world)
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def _order(self, n: int, epoch: int, salt: int) -> list[int]:
        if not self.shuffle:
            return list(range(n))
        gen = torch.Generator().manual_seed(hash((self.seed, epoch, salt)) & 0x7FFF_FFFF)
        return torch.randperm(n, generator=gen).tolist()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        me, consumers = self._consumer()
        epoch = self._epoch if self._epoch is not None else self._passes
        self._passes += 1
        shards = self._order(len(self.shards.files), epoch, -1)
        by_shard = len(shards) >= consumers
        position = 0
        for shard in shards[me::consumers] if by_shard else shards:
            for row in self._order(self.shards.shard_rows(shard), epoch, shard):
                position += 1
                if not by_shard and (position - 1) % consumers != me:
                    continue
                meta, codes = self.shards.row(shard, row)
                yield self.items.make(meta, codes, self.shards.starts[shard] + row)


def _check_rank(rank: int | None, world_size: int | None) -> None:
    if world_size is not None and (
        isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1
    ):
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if rank is None:
        return
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be a non-negative integer, got {rank!r}")
    if world_size is not None and rank >= world_size:
        raise ValueError(f"rank {rank} is not below world_size {world_size} (ranks are 0..{world_size - 1})")
