"""LM training data from a ``codec tokenize`` output: :class:`TokenDataset` and :class:`IterableTokenDataset`.

Both yield one dict per item::

    {"id": str, "codes": LongTensor [K, F], "length": int (valid frames), "path": str,
     "duration": float, "sample_rate": int, "num_samples": int, <metadata columns>}

With ``max_frames``, longer items are cropped to ``max_frames`` (from the start, or at a
random offset with ``random_crop``: a pure function of ``(seed, epoch, item)``), and with
``pad=True`` shorter ones are padded with ``pad_value`` up to it, so items stack into a batch;
``length`` then says how many frames are real.

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
import pyarrow.parquet as pq
import torch

from codec.data.shards import read_index

_FIXED = ("id", "path", "duration", "sample_rate", "num_samples")
_SKIP = {"codes", "num_frames", "num_codebooks", "model", "fingerprint"}


class _Shards:
    """The shards of an output, opened on demand (a few kept open, memory-mapped)."""

    def __init__(self, root: str | Path, keep_open: int = 2) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        self.files = [self.root / s["file"] for s in self.index["shards"]]
        self.starts = [0]
        for s in self.index["shards"]:
            self.starts.append(self.starts[-1] + s["rows"])
        self.num_codebooks = int(self.index["model"]["num_codebooks"])
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
        table = pq.read_table(self.files[shard], memory_map=True)
        codes = table["codes"].combine_chunks()
        offsets = codes.offsets.to_numpy(zero_copy_only=False)
        values = codes.values.to_numpy(zero_copy_only=False)
        meta = {c: table[c].to_pylist() for c in table.column_names if c not in _SKIP}
        self._open[shard] = (meta, offsets - offsets[0], values[offsets[0] :])
        while len(self._open) > self.keep_open:
            self._open.popitem(last=False)
        return self._open[shard]


class _Items:
    """Turning a stored row into the item dict (codebooks kept, crop, pad)."""

    def __init__(
        self,
        num_codebooks: int | None,
        max_frames: int | None,
        pad: bool,
        pad_value: int,
        random_crop: bool,
        seed: int,
    ) -> None:
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be a positive integer, got {max_frames}")
        if pad and max_frames is None:
            raise ValueError("pad=True needs max_frames (the length to pad to)")
        self.num_codebooks, self.max_frames, self.pad = num_codebooks, max_frames, pad
        self.pad_value, self.random_crop, self.seed = pad_value, random_crop, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Random crops (and the iterable dataset's shuffle) change with the epoch."""
        self.epoch = epoch

    def make(self, meta: dict[str, Any], codes: np.ndarray, key: int) -> dict[str, Any]:
        k = codes.shape[0] if self.num_codebooks is None else self.num_codebooks
        if k > codes.shape[0]:
            raise ValueError(f"num_codebooks {k}: the output holds {codes.shape[0]} codebooks")
        out = torch.from_numpy(codes[:k].astype(np.int64))
        if self.max_frames is not None and out.shape[1] > self.max_frames:
            start = 0
            if self.random_crop:
                gen = torch.Generator().manual_seed(hash((self.seed, self.epoch, key)) & 0x7FFF_FFFF)
                start = int(torch.randint(out.shape[1] - self.max_frames + 1, (1,), generator=gen))
            out = out[:, start : start + self.max_frames]
        length = out.shape[1]
        if self.pad and length < self.max_frames:
            out = torch.nn.functional.pad(out, (0, self.max_frames - length), value=self.pad_value)
        return {**meta, "codes": out.contiguous(), "length": length}


class TokenDataset(torch.utils.data.Dataset):
    """Map-style dataset over a tokenize output (see the module docstring).

    Args:
        root: the output folder (its ``index.json`` lists the shards).
        num_codebooks: keep the first K codebooks (a lower bitrate; default: all stored).
        max_frames: crop longer items to this many frames.
        pad: pad shorter items with ``pad_value`` to ``max_frames``.
        pad_value: the padding code (e.g. an LM's pad token).
        random_crop: crop at a random offset instead of the start.
        seed: of the random crops.
    Raises ``ValueError`` naming the problem for a folder that is not a complete output.
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
    ) -> None:
        self.shards = _Shards(root)
        self.items = _Items(num_codebooks, max_frames, pad, pad_value, random_crop, seed)

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        meta, codes = self.shards.row(*self.shards.locate(index))
        return self.items.make(meta, codes, index)

    def set_epoch(self, epoch: int) -> None:
        self.items.set_epoch(epoch)


class IterableTokenDataset(torch.utils.data.IterableDataset):
    """Streaming dataset over a tokenize output, split across ranks and workers (module docstring).

    Args: as :class:`TokenDataset`, and
        shuffle: visit shards, and rows within a shard, in an order drawn from ``(seed, epoch)``.
        rank, world_size: override the process group's (default: ``torch.distributed``'s, or 0 of 1).
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
    ) -> None:
        self.shards = _Shards(root, keep_open=1)
        self.items = _Items(num_codebooks, max_frames, pad, pad_value, random_crop, seed)
        self.shuffle, self.seed = shuffle, seed
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.items.set_epoch(epoch)

    def _consumer(self) -> tuple[int, int]:
        dist = torch.distributed
        ready = dist.is_available() and dist.is_initialized()
        rank = self.rank if self.rank is not None else (dist.get_rank() if ready else 0)
        world = self.world_size if self.world_size is not None else (dist.get_world_size() if ready else 1)
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def _order(self, n: int, salt: int) -> list[int]:
        if not self.shuffle:
            return list(range(n))
        gen = torch.Generator().manual_seed(hash((self.seed, self.items.epoch, salt)) & 0x7FFF_FFFF)
        return torch.randperm(n, generator=gen).tolist()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        me, consumers = self._consumer()
        shards = self._order(len(self.shards.files), -1)
        by_shard = len(shards) >= consumers
        position = 0
        for shard in shards[me::consumers] if by_shard else shards:
            for row in self._order(self.shards.shard_rows(shard), shard):
                position += 1
                if not by_shard and (position - 1) % consumers != me:
                    continue
                meta, codes = self.shards.row(shard, row)
                yield self.items.make(meta, codes, self.shards.starts[shard] + row)
