"""Teacher outputs cached on disk for distillation, and the keyed training crops they belong to.

A distillation run can draw its training crops from a fixed pool (``train.distill.pool_items``):
item ``j`` is crop ``j mod pool`` of the run's usual random crops (:class:`codec.train.data.
RandomCrops`, a pure function of the seed and the item key).  Every crop then recurs, and the
teacher's outputs for it (latent, codes, reconstruction) are computed once and read back from
one file per crop afterwards.

The cache folder holds ``cache.json``, the identity of what it was computed for (the teacher's
weights fingerprint and every setting that shapes a crop: rate, length, seed, pool size,
loudness, the file list); a run with a different identity is refused instead of being taught
stale targets.  Each entry (``NNNNNNNN.safetensors``) is written atomically, so a killed run
leaves complete entries only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from codec.atomic import OutputBusyError, atomic_write
from codec.config import ConfigError
from codec.train.data import AudioDataModule, AudioFile, RandomCrops
from codec.train.distill import TeacherTargets

IDENTITY_NAME = "cache.json"


class PooledCrops(Dataset):
    """Item ``key``: ``(key mod pool, crop)`` of the wrapped random crops (``pool`` 0: no wrap)."""

    def __init__(self, crops: RandomCrops, pool: int) -> None:
        self.crops, self.pool = crops, pool

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, key: int) -> tuple[int, torch.Tensor]:
        key = key % self.pool if self.pool else key
        return key, self.crops[key]


class DistillDataModule(AudioDataModule):
    """:class:`AudioDataModule` whose training batches are ``(keys [B], crops [B, T])``."""

    def __init__(self, cfg: Any, sample_rate: int, hop_length: int, seed: int, pool: int) -> None:
        super().__init__(cfg, sample_rate, hop_length, seed)
        self.pool = pool
        # The base loader (step-resumable sampler, its own generator) over the pooled crops.
        self.wrap_train = lambda crops: PooledCrops(crops, pool)


def cache_identity(
    teacher_fingerprint: str, data: DistillDataModule, files: list[AudioFile]
) -> dict[str, Any]:
    """What a cache's entries depend on (compared with the folder's ``cache.json``)."""
    listing = "\n".join(f"{f.path}\t{f.num_samples}\t{f.sample_rate}" for f in files)
    return {
        "teacher": teacher_fingerprint,
        "sample_rate": data.sample_rate,
        "segment": data.segment,
        "seed": data.seed,
        "pool_items": data.pool,
        "loudness_db": data.cfg.loudness_db,
        "loudness_jitter_db": data.cfg.loudness_jitter_db,
        "files": hashlib.sha256(listing.encode()).hexdigest(),
    }


class TeacherCache:
    """Per-crop teacher targets in ``directory``; created, or checked against ``identity``.

    Raises:
        ConfigError: the folder holds a cache made for another teacher or other crops.
    """

    def __init__(self, directory: str | Path, identity: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.hits = self.misses = 0
        path = self.directory / IDENTITY_NAME
        if not path.is_file():
            text = json.dumps(identity, indent=2, sort_keys=True) + "\n"
            try:
                atomic_write(path, lambda p: p.write_text(text))
            except OutputBusyError:  # another process of the run writes it right now
                time.sleep(1.0)
        try:
            found = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{path}: not a teacher cache (unreadable {IDENTITY_NAME})") from None
        if found != identity:
            what = sorted(k for k in set(found) | set(identity) if found.get(k) != identity.get(k))
            raise ConfigError(
                f"{self.directory}: this teacher cache was made for another teacher or other crops "
                f"(differs in {', '.join(what)}); choose another cache folder or delete it"
            )

    def _entry(self, key: int) -> Path:
        return self.directory / f"{key:08d}.safetensors"

    def read(self, key: int) -> TeacherTargets | None:
        """The targets of crop ``key`` (batch dimension 1), or None when not cached yet."""
        path = self._entry(key)
        if not path.is_file():
            return None
        try:
            t = load_file(str(path))
        except (SafetensorError, OSError, ValueError):
            return None  # unreadable (should not happen: writes are atomic): recompute it
        return TeacherTargets(t["latent"].float()[None], t["codes"].long()[None], t["wav"].float()[None])

    def write(self, key: int, targets: TeacherTargets) -> None:
        """Store the targets of one crop (batch dimension 1)."""
        state = {
            "latent": targets.latent[0].to("cpu", torch.float16).contiguous(),
            "codes": targets.codes[0].to("cpu", torch.int16).contiguous(),
            "wav": targets.wav[0].to("cpu", torch.float16).contiguous(),
        }
        # Another process (a DDP rank) may be storing the same crop's targets right now: its copy will do.
        with contextlib.suppress(OutputBusyError):
            atomic_write(self._entry(key), lambda p: save_file(state, str(p)), suffix=".safetensors")

    def lookup(
        self, keys: list[int], wav: torch.Tensor, compute: Callable[[torch.Tensor], TeacherTargets]
    ) -> TeacherTargets:
        """Targets for crops ``keys`` with audio ``wav [B, T]``: cached ones read, the others
        computed by ``compute(wav_subset)`` and stored.  Returns a batch in ``keys`` order."""
        found = [self.read(k) for k in keys]
        missing = [i for i, t in enumerate(found) if t is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = compute(wav[missing])
            for row, i in enumerate(missing):
                one = TeacherTargets(
                    fresh.latent[row : row + 1], fresh.codes[row : row + 1], fresh.wav[row : row + 1]
                )
                self.write(keys[i], one)
                found[i] = one
        device = wav.device
        return TeacherTargets(
            torch.cat([t.latent for t in found]).to(device),
            torch.cat([t.codes for t in found]).to(device),
            torch.cat([t.wav for t in found]).to(device),
        )
