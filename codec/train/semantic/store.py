"""Teacher features computed once per audio file, stored on disk, read back for training crops.

Running a large teacher (WavLM, HuBERT) on every training batch costs more than the codec's
own step; its features of a file never change, so :func:`precompute_features` computes them
once, for the whole file, and every later epoch and run reads them.  One safetensors file per
audio file, named by a hash of the audio file's resolved path, the teacher's identity
(source, layer, input rate) and the preprocessing (model rate, loudness), so a different
teacher or layer never reads stale features.  Writes are atomic: an interrupted run leaves
complete files only, and the next run computes what is missing.

A training crop reads only the teacher frames it needs (``safe_open`` slices) and aligns them
to the codec's frames at the crop's time offset in the file.  The teacher sees the whole file
(at ``loudness_db``, without the crop's random gain): with a transformer teacher, features of
a whole utterance differ slightly from those of a crop, as in the published recipes that
precompute them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset

from codec.atomic import atomic_write
from codec.train.data import AudioFile, DataError, RandomCrops, normalize_loudness, read_audio
from codec.train.semantic.align import align_frames, frame_span
from codec.train.semantic.teacher import Teacher

if TYPE_CHECKING:
    from codec.train.data import AudioDataModule

_FORMAT = "codec-teacher-features/1"


@dataclass(frozen=True)
class PrecomputeResult:
    """Where the features are, and how many files were computed now or found done."""

    directory: Path
    computed: int
    reused: int


class FeatureStore:
    """A folder of per-file teacher features for one teacher and one preprocessing.

    Args:
        directory: the folder (created when features are written).
        identity: the teacher's :attr:`Teacher.identity`.
        sample_rate: the model rate the audio is read at before the teacher resamples it.
        loudness_db: the RMS level each file is normalised to.
    """

    def __init__(self, directory: str | Path, identity: str, sample_rate: int, loudness_db: float) -> None:
        self.directory = Path(directory)
        self.identity, self.sample_rate, self.loudness_db = identity, sample_rate, loudness_db

    def path(self, file: AudioFile) -> Path:
        """The feature file of ``file`` for this teacher and preprocessing."""
        parts = (_FORMAT, str(Path(file.path).resolve()), self.identity, str(self.sample_rate))
        key = hashlib.sha256("\0".join((*parts, repr(self.loudness_db))).encode()).hexdigest()[:32]
        return self.directory / f"{key}.safetensors"

    def compute(self, teacher: Teacher, file: AudioFile) -> tuple[torch.Tensor, float]:
        """Teacher features of the whole ``file``: ``([Ft, D] float32 on the CPU, frames per second)``."""
        wav = normalize_loudness(read_audio(file, 0, file.num_samples, self.sample_rate), self.loudness_db)
        x = wav[None]
        if self.sample_rate != teacher.sample_rate:
            import torchaudio.functional as AF

            x = AF.resample(x, self.sample_rate, teacher.sample_rate)
        feats = teacher.features(x)
        return feats[0].cpu().contiguous(), teacher.rate_of(feats, x.shape[-1])

    def write(self, file: AudioFile, features: torch.Tensor, rate: float) -> Path:
        meta = {
            "format": _FORMAT,
            "path": file.path,
            "teacher": self.identity,
            "frame_rate": repr(float(rate)),
            "num_samples": str(file.num_samples),
        }
        tensors = {"features": features}
        return atomic_write(self.path(file), lambda p: save_file(tensors, str(p), metadata=meta))

    def read(self, file: AudioFile, offset: float, frame_rate: float, num_frames: int) -> torch.Tensor:
        """Features ``[num_frames, D]`` on the codec's grid for a crop starting ``offset`` s into ``file``.

        Raises:
            DataError: the features are missing or were computed for a different file.
        """
        path = self.path(file)
        if not path.is_file():
            raise DataError(f"{file.path}: no teacher features in {self.directory} (precompute them first)")
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("num_samples") != str(file.num_samples) or meta.get("teacher") != self.identity:
                raise DataError(f"{path}: teacher features of another version of {file.path}; delete it")
            rate = float(meta["frame_rate"])
            sliced = f.get_slice("features")
            start, stop = frame_span(rate, frame_rate, num_frames, offset, sliced.get_shape()[0])
            part = sliced[start:stop]
        return align_frames(part[None], rate, frame_rate, num_frames, offset - start / rate)[0]


def precompute_features(
    teacher: Teacher, files: Sequence[AudioFile], store: FeatureStore, progress: bool = False
) -> PrecomputeResult:
    """Compute and store the features of every file in ``files`` that has none yet.

    Several processes may run this at once (one per GPU): a file another process is writing
    is left to it.
    Returns: a :class:`PrecomputeResult`.
    Raises:
        DataError: a file cannot be read or the teacher fails on it.
    """
    from tqdm import tqdm

    from codec.atomic import OutputError

    computed = reused = 0
    for file in tqdm(files, desc="teacher features", disable=not progress):
        if store.path(file).is_file():
            reused += 1
            continue
        try:
            feats, rate = store.compute(teacher, file)
        except (ValueError, RuntimeError) as err:
            raise DataError(f"{file.path}: teacher failed ({type(err).__name__}: {err})") from None
        try:
            store.write(file, feats, rate)
        except OutputError:
            continue  # another process holds it: it writes the same features
        computed += 1
    return PrecomputeResult(store.directory, computed, reused)


class FeatureCrops(Dataset):
    """Training crops with their precomputed teacher features: item ``key`` is ``(wav [S], [F, D])``.

    The crops are exactly those of ``crops`` (same files, offsets and gains).
    """

    def __init__(self, crops: RandomCrops, store: FeatureStore, frame_rate: float, num_frames: int) -> None:
        self.crops, self.store = crops, store
        self.frame_rate, self.num_frames = frame_rate, num_frames

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        crop = self.crops.draw(key)
        offset = crop.start / crop.file.sample_rate
        feats = self.store.read(crop.file, offset, self.frame_rate, self.num_frames)
        return self.crops.read(crop), feats


def attach_features(
    data: AudioDataModule, teacher: Teacher, directory: str | Path, progress: bool = False
) -> PrecomputeResult:
    """Precompute the training files' features into ``directory`` (what is missing) and make
    ``data`` serve crops with them."""
    store = FeatureStore(directory, teacher.identity, data.sample_rate, data.cfg.loudness_db)
    result = precompute_features(teacher, data.train_files, store, progress)
    frame_rate = data.sample_rate / data.hop
    num_frames = data.segment // data.hop
    data.wrap_train = lambda crops: FeatureCrops(crops, store, frame_rate, num_frames)
    return result
