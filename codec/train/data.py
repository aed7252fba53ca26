"""Training data: audio files from folders or manifests, random crops, a held-out validation set.

Folders are searched for the audio suffixes every command picks up
(:data:`codec.formats.AUDIO_SUFFIXES`).  Files are read by the library's one reader
(:mod:`codec.pipeline.audiofile`: a truncated or damaged file is refused when the data is
listed, naming it) and resampled by its guarded resampler (:func:`codec.audio.resample`, whose
filter stays a few MB whatever the rates); audio is downmixed to mono and loudness-normalised
(RMS, with a random jitter for training).

Training items are a pure function of ``(seed, rank, item index)``: item ``j`` of rank ``r``
draws its file, crop and gain from a generator seeded by those numbers.  The data state is
therefore just the step count, which Lightning restores on ``--resume``; a resumed run sees
exactly the items the uninterrupted run would have seen, whatever the number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from codec.audio import AudioError, resample
from codec.errors import InputError
from codec.formats import MANIFEST_SUFFIXES, audio_files
from codec.manifest import ManifestError, manifest_paths
from codec.pipeline.audiofile import AudioInfo, audio_info, load_audio, read_segment
from codec.train.config import DataConfig

# Crops quieter than this (RMS, dBFS) are not amplified to the target level: it would only
# turn near-silence into loud noise.
_SILENCE_DB = -60.0


class DataError(InputError):
    """Training data missing or unreadable; the message says which path and why."""


@dataclass(frozen=True)
class AudioFile:
    """One file: its path, native rate, channels and length in samples per channel
    (``declared``: by its header; else counted, and the file is read from its start)."""

    path: str
    sample_rate: int
    channels: int
    num_samples: int
    declared: bool = True

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


def _probe(path: Path) -> AudioFile:
    try:
        info = audio_info(path)
        length = info.num_samples
        if length is None:  # not declared in the header: count the samples once
            length = load_audio(path).wav.shape[-1]
    except AudioError as err:
        raise DataError(f"not readable audio: {err}") from None
    return AudioFile(str(path), info.sample_rate, info.channels, length, info.num_samples is not None)


def _manifest_paths(manifest: Path) -> list[Path]:
    """Paths listed in a manifest (:mod:`codec.manifest`, the reader tokenize and bench use)."""
    try:
        return manifest_paths(manifest)
    except ManifestError as err:
        raise DataError(str(err)) from None


def find_audio(sources: Sequence[str | Path]) -> list[AudioFile]:
    """All audio files under the folders / in the manifests ``sources``, sorted by path.

    Raises:
        DataError: a source does not exist, or no audio was found.
    """
    if not sources:
        raise DataError("no training data given (use --data DIR or train.data.train in the config)")
    paths: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            paths += [p for p in audio_files(source) if p.is_file()]
        elif source.is_file() and source.suffix.lower() in MANIFEST_SUFFIXES:
            paths += _manifest_paths(source)
        elif source.is_file():
            paths.append(source)
        else:
            raise DataError(f"{source}: no such folder or manifest")
    files = [_probe(p) for p in sorted(set(paths))]
    files = [f for f in files if f.num_samples > 0]
    if not files:
        raise DataError(f"no audio files found in {', '.join(map(str, sources))}")
    return files


def read_audio(file: AudioFile, start: int, num_samples: int, sample_rate: int) -> torch.Tensor:
    """Read ``num_samples`` native samples per channel from ``start``, downmix and resample.

    Returns ``[T]`` float32.
    """
    info = AudioInfo(file.sample_rate, file.channels, file.num_samples if file.declared else None)
    try:
        wav = read_segment(file.path, start, num_samples, info).wav.mean(0)
    except AudioError as err:
        raise DataError(f"not readable audio: {err}") from None
    return resample(wav[None], file.sample_rate, sample_rate)[0]


def normalize_loudness(wav: torch.Tensor, target_db: float) -> torch.Tensor:
    """Scale ``wav [T]`` to ``target_db`` dBFS RMS (near-silence untouched), peaks kept below 1."""
    rms_db = 10 * math.log10(float(wav.pow(2).mean()) + 1e-12)
    if rms_db > _SILENCE_DB:
        wav = wav * 10 ** ((target_db - rms_db) / 20)
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    return wav / peak * 0.99 if peak > 0.99 else wav


@dataclass(frozen=True)
class Crop:
    """One training item: ``num_samples`` native samples of ``file`` from ``start``, at ``gain_db``."""

    file: AudioFile
    start: int
    num_samples: int
    gain_db: float


class RandomCrops(Dataset):
    """Item ``j``: a random crop of ``segment`` samples at ``sample_rate``, ``[segment]``.

    Files are drawn in proportion to their duration; shorter files are zero-padded.
    """

    def __init__(self, files: list[AudioFile], cfg: DataConfig, sample_rate: int, segment: int, seed: int):
        self.files, self.cfg = files, cfg
        self.sample_rate, self.segment, self.seed = sample_rate, segment, seed
        weights = torch.tensor([f.seconds for f in files], dtype=torch.float64)
        self.cumulative = torch.cumsum(weights / weights.sum(), 0)

    def __len__(self) -> int:
        return 2**62  # infinite stream; the sampler says which items are read

    def draw(self, key: int) -> Crop:
        """Which file, where and how loud item ``key`` is (a pure function of seed and key)."""
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + key) % 2**63)
        u = torch.rand(3, generator=gen, dtype=torch.float64)
        file = self.files[min(int(torch.searchsorted(self.cumulative, u[0])), len(self.files) - 1)]
        native = math.ceil(self.segment * file.sample_rate / self.sample_rate) + 1
        start = int(u[1] * max(file.num_samples - native, 0))
        gain = self.cfg.loudness_db + (2 * float(u[2]) - 1) * self.cfg.loudness_jitter_db
        return Crop(file, start, min(native, file.num_samples), gain)

    def read(self, crop: Crop) -> torch.Tensor:
        """The crop's samples ``[segment]`` at the model rate."""
        wav = read_audio(crop.file, crop.start, crop.num_samples, self.sample_rate)[: self.segment]
        wav = torch.nn.functional.pad(wav, (0, self.segment - wav.shape[0]))
        return normalize_loudness(wav, crop.gain_db)

    def __getitem__(self, key: int) -> torch.Tensor:
        return self.read(self.draw(key))


class StepSampler(Sampler[int]):
    """Item keys ``(start + i) * world + rank`` for ``i = 0, 1, ...``: resumable, rank-disjoint."""

    def __init__(self, start: int, rank: int, world: int) -> None:
        self.start, self.rank, self.world = start, rank, world

    def __iter__(self) -> Iterator[int]:
        i = self.start
        while True:
            yield i * self.world + self.rank
            i += 1

    def __len__(self) -> int:
        return 2**31 - 1


class Utterances(Dataset):
    """Validation items: whole files (cut to ``max_samples``, trimmed to whole frames), ``[T]``."""

    def __init__(self, files: list[AudioFile], cfg: DataConfig, sample_rate: int, hop: int):
        self.files, self.cfg, self.sample_rate, self.hop = files, cfg, sample_rate, hop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        file = self.files[index]
        native = min(file.num_samples, int(self.cfg.val_seconds * file.sample_rate))
        wav = read_audio(file, 0, native, self.sample_rate)
        wav = wav[: max(wav.shape[0] // self.hop, 1) * self.hop]
        wav = torch.nn.functional.pad(wav, (0, max(self.hop - wav.shape[0], 0)))
        return normalize_loudness(wav, self.cfg.loudness_db)


def split_files(
    train: list[AudioFile], val: list[AudioFile] | None, fraction: float
) -> tuple[list[AudioFile], list[AudioFile]]:
    """Explicit validation files, or every ``round(1 / fraction)``-th training file held out."""
    if val:
        return train, val
    if fraction <= 0 or len(train) < 2:
        raise DataError("no validation data: give --val-data DIR or set train.data.val_fraction > 0")
    every = max(round(1 / fraction), 2)
    held = train[::every]
    return [f for i, f in enumerate(train) if i % every], held


class AudioDataModule(L.LightningDataModule):
    """Random training crops and fixed validation utterances for one model.

    Args:
        cfg: the data section of the training config (paths already resolved).
        sample_rate, hop_length: the model's.
        seed: the run seed (items are a function of it, see the module docstring).
    """

    def __init__(self, cfg: DataConfig, sample_rate: int, hop_length: int, seed: int = 0) -> None:
        super().__init__()
        self.cfg, self.sample_rate, self.hop, self.seed = cfg, sample_rate, hop_length, seed
        train = find_audio(cfg.train)
        val = find_audio(cfg.val) if cfg.val else None
        self.train_files, self.val_files = split_files(train, val, cfg.val_fraction)
        self.val_files = self.val_files[: cfg.val_items]
        frames = max(round(cfg.segment_seconds * sample_rate / hop_length), 1)
        self.segment = frames * hop_length
        # Replaces the training crops by a dataset built on them (e.g. crops with precomputed
        # teacher features, codec.train.semantic.store); None: the crops themselves.
        self.wrap_train: Callable[[RandomCrops], Dataset] | None = None

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        step = trainer.global_step if trainer is not None else 0
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        bs = self.cfg.batch_size
        crops = RandomCrops(self.train_files, self.cfg, self.sample_rate, self.segment, self.seed)
        dataset = crops if self.wrap_train is None else self.wrap_train(crops)
        return DataLoader(
            dataset,
            batch_size=bs,
            sampler=StepSampler(step * bs, rank, world),
            # Its own generator: creating the loader must not consume the global random state
            # (a resumed run re-creates it at a different point than the uninterrupted one).
            generator=torch.Generator().manual_seed(self.seed),
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        dataset = Utterances(self.val_files, self.cfg, self.sample_rate, self.hop)
        return DataLoader(dataset, batch_size=1, num_workers=0)
