"""From a stored row to a training item, and from items to a batch.

* :class:`Items`: a row's codes ``[K, F]`` -> the item dict (codebooks kept, crop, pad), with
  the crop's start frame and time so crops line up with transcripts and alignments.
* :class:`Crops`: where random crops start.  By default they differ every epoch, as
  PyTorch's ``RandomSampler`` does: the crop of item ``i`` on its ``n``-th read in a process
  is a pure function of ``(seed, i, n)`` and, inside ``DataLoader`` workers, of the loader's
  base seed for that epoch (which the loader draws from torch's random generator, or from
  its ``generator``; so ``torch.manual_seed`` makes a run reproducible).  After
  ``set_epoch(e)`` crops are a pure function of ``(seed, e, i)`` instead: the same for any
  number of workers or ranks and across restarts, as ``DistributedSampler`` does.
* :func:`collate_tokens`: a batch of items of different lengths, padded, with their lengths.
* :func:`row_codes`: the codes of a row read by other tools (Hugging Face ``datasets``,
  pyarrow) as ``[K, F]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Crops:
    """Start frames of random crops (module docstring).

    Args: seed: of every crop; size: items in the dataset (a read count is kept per item).
    """

    def __init__(self, seed: int, size: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed, self.size = int(seed), size
        self.epoch: int | None = None
        self._reads: np.ndarray | None = None  # per item, allocated at the first random crop

    def set_epoch(self, epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def start(self, key: int, choices: int) -> int:
        """A start in ``0..choices - 1`` for item ``key``."""
        if self.epoch is not None:
            entropy = [self.seed, 0, self.epoch, key]
        else:
            if self._reads is None:
                self._reads = np.zeros(self.size, dtype=np.int64)
            entropy = [self.seed, 1, _loader_seed(), key, int(self._reads[key])]
            self._reads[key] += 1
        return int(np.random.default_rng(np.random.SeedSequence(entropy)).integers(choices))


def _loader_seed() -> int:
    """Inside a ``DataLoader`` worker, the loader's base seed for this epoch (the same in every
    worker of the loader, so a crop does not depend on which worker reads it); else 0."""
    info = torch.utils.data.get_worker_info()
    return 0 if info is None else (info.seed - info.id) % (1 << 64)


class Items:
    """A stored row -> the item dict.

    Args: as the datasets' (num_codebooks ``None`` = all ``stored`` codebooks); frame_rate of
    the codes, for the crop's start time.
    """

    def __init__(
        self,
        stored: int,
        frame_rate: float,
        size: int,
        num_codebooks: int | None,
        max_frames: int | None,
        pad: bool,
        pad_value: int,
        random_crop: bool,
        seed: int,
    ) -> None:
        k = stored if num_codebooks is None else _positive("num_codebooks", num_codebooks)
        if k > stored:
            raise ValueError(f"num_codebooks must be in 1..{stored} (the codebooks stored), got {k}")
        if max_frames is not None:
            max_frames = _positive("max_frames", max_frames)
        for name, flag in (("pad", pad), ("random_crop", random_crop)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        if pad and max_frames is None:
            raise ValueError("pad=True needs max_frames (the length to pad to)")
        if isinstance(pad_value, bool) or not isinstance(pad_value, (int, np.integer)):
            raise ValueError(f"pad_value must be an integer, got {pad_value!r}")
        self.num_codebooks, self.max_frames, self.pad = k, max_frames, pad
        self.pad_value, self.random_crop, self.frame_rate = int(pad_value), random_crop, frame_rate
        self.crops = Crops(seed, size)

    def make(self, meta: dict[str, Any], codes: np.ndarray, key: int) -> dict[str, Any]:
        """Args: meta the row's other columns; codes ``[K_stored, F]``; key the item's index."""
        out = torch.from_numpy(codes[: self.num_codebooks].astype(np.int64))
        start = 0
        if self.max_frames is not None and out.shape[1] > self.max_frames:
            if self.random_crop:
                start = self.crops.start(key, out.shape[1] - self.max_frames + 1)
            out = out[:, start : start + self.max_frames]
        length = out.shape[1]
        if self.pad and length < self.max_frames:
            out = torch.nn.functional.pad(out, (0, self.max_frames - length), value=self.pad_value)
        return {
            **meta,
            "codes": out.contiguous(),
            "length": length,
            "start_frame": start,
            "start_time": start / self.frame_rate,
        }


def collate_tokens(items: Sequence[Mapping[str, Any]], pad_value: int = 0) -> dict[str, Any]:
    """A batch of token items of any lengths (``DataLoader(collate_fn=...)``).

    Args:
        items: dicts with ``codes`` ``[K, F_i]`` and ``length`` (as the token datasets yield).
        pad_value: what fills the frames past each item's ``F_i``.
    Returns: ``codes`` int64 ``[B, K, max F_i]``, ``length`` ``[B]`` (valid frames), every other
        key numeric in all items as a ``[B]`` tensor and the rest as lists.
    """
    if not items:
        raise ValueError("collate_tokens needs at least one item")
    shapes = {tuple(item["codes"].shape[:-1]) for item in items}
    if len(shapes) != 1:
        raise ValueError(f"items have different codebook counts: {sorted(shapes)}")
    frames = max(item["codes"].shape[-1] for item in items)
    codes = torch.full((len(items), *shapes.pop(), frames), pad_value, dtype=torch.long)
    for i, item in enumerate(items):
        codes[i, :, : item["codes"].shape[-1]] = item["codes"]
    out: dict[str, Any] = {"codes": codes}
    for key in items[0]:
        if key == "codes":
            continue
        values = [item.get(key) for item in items]
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in values)
        out[key] = torch.tensor(values) if numeric else values
    return out


def row_codes(row: Mapping[str, Any]) -> torch.Tensor:
    """``[K, F]`` int64 codes of a shard row as other readers give it (flat ``codes``,
    ``num_frames``, ``num_codebooks``: Hugging Face ``datasets``, ``pyarrow``'s ``to_pylist``)."""
    flat = torch.as_tensor(np.asarray(row["codes"], dtype=np.int64))
    frames, k = int(row["num_frames"]), int(row["num_codebooks"])
    if flat.numel() != frames * k:
        raise ValueError(f"row has {flat.numel()} codes, not num_frames * num_codebooks = {frames * k}")
    return flat.reshape(frames, k).T.contiguous()
