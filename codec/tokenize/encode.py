"""Coding one shard: exact length-bucketed batches through :meth:`codec.api.Codec.encode`.

Items are read through the pipeline's reader (:func:`codec.pipeline.audiofile.load_audio`:
every truncation and damage check applies), mixed to mono (the mean of the channels), and
resampled to the model's rate by the function :meth:`Codec.encode` itself uses
(:func:`codec.audio.resample`) on the model's device.  A shard's items are sorted by
duration; consecutive items are batched up to ``batch_seconds`` of padded audio and coded with
their ``lengths``, so by the API's batch invariance every item gets exactly the codes it gets
alone: ``codec.encode(mono[None], sample_rate)``.

Reading runs one batch ahead in a thread (libsndfile and torch release the GIL), so the disk
and the decoder overlap with the model.  An item that cannot be read becomes an error row
``(id, path, reason)`` and the shard goes on.

An item longer than ``batch_seconds`` (a batch of its own) is fed to the model in chunks of at
most ``batch_seconds`` through the pipeline's block encoder (a causal model's stream, in
multiples of 16 frames: bit-exact with encoding it whole), so the model's activations follow
the chunk, not the item.  When the file is at the model's rate it is also read chunk by chunk
(the channel mean is per sample, so nothing changes): memory then does not grow with its
length beyond its codes.  A file at another rate is read and resampled whole first (as
``Codec.encode`` resamples it: a block resampler would differ in the last bits), and a
non-causal model, which cannot stream, codes such an item whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from codec.api import Codec
from codec.audio import resample, resampled_length
from codec.formats import text_path
from codec.pipeline.audiofile import AudioFileSource, load_audio
from codec.pipeline.coders import AudioEncoder, chunk_frames
from codec.streaming import EXACT_FRAMES
from codec.tokenize.plan import Plan, PlannedItem, batches, reason
from codec.tokenize.shards import Row, write_shard


@dataclass
class EncodeStats:
    """Work done: items coded, errors, seconds of audio, and frames coded vs. frames valid."""

    items: int = 0
    errors: int = 0
    audio_seconds: float = 0.0
    frames: int = 0
    padded_frames: int = 0

    def add(self, other: EncodeStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_list(self) -> list[float]:
        return [float(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_list(cls, values: list[float]) -> EncodeStats:
        kinds = [f.type for f in fields(cls)]
        return cls(
            *(float(v) if t in ("float", float) else round(v) for v, t in zip(values, kinds, strict=True))
        )

    @property
    def padding(self) -> float:
        """Extra frames the model ran on because of padding, relative to the valid frames."""
        return self.padded_frames / self.frames - 1 if self.frames else 0.0


@dataclass(frozen=True)
class Loaded:
    """One item read: ``wav [T]`` mono at the model rate, or the reason it could not be read."""

    item: PlannedItem
    wav: torch.Tensor | None
    sample_rate: int = 0
    num_samples: int = 0
    error: str | None = None
    streamed: bool = False  # not read yet: read chunk by chunk as it is coded (see the docstring)

    @property
    def ok(self) -> bool:
        return self.wav is not None or self.streamed


def load_item(
    item: PlannedItem, model_rate: int, device: torch.device, stream_above: int | None = None
) -> Loaded:
    """Read, mix to mono and resample one item; a failure becomes ``Loaded.error``.

    An item at the model rate declaring more than ``stream_above`` samples is left to be read
    as it is coded (``Loaded.streamed``).
    """
    declared = item.num_samples is not None and item.sample_rate == model_rate
    if stream_above is not None and declared and item.num_samples > stream_above:
        return Loaded(item, None, item.sample_rate, item.num_samples, streamed=True)
    path = text_path(item.path)
    try:
        audio = load_audio(path)
        mono = audio.wav.mean(0, keepdim=True) if audio.wav.shape[0] > 1 else audio.wav
        wav = resample(mono.to(device), audio.sample_rate, model_rate)[0]
    except Exception as err:  # any unreadable file is reported, never the end of the run
        return Loaded(item, None, error=reason(err, path))
    return Loaded(item, wav, audio.sample_rate, audio.wav.shape[-1])


def encode_shard(
    codec: Codec,
    plan: Plan,
    shard: int,
    num_codebooks: int,
    out: Path,
    batch_seconds: float,
    progress: Callable[[EncodeStats], None] | None = None,
    rank: int = 0,
) -> Path:
    """Code every item of ``shard`` and write it atomically; returns the shard's path.

    Args:
        codec: the model (on its device).
        plan: the run's plan.
        shard: which shard.
        num_codebooks: K.
        out: the output folder.
        batch_seconds: padded audio per model call, at the model's rate.
        progress: called with the work of each batch.
        rank: of this process (recorded in the shard's metadata).
    """
    items = plan.shard_items(shard)
    rate = codec.sample_rate
    lengths = [None if i.num_samples is None else int(resampled_length(i.num_samples, i.sample_rate, rate))
               for i in items]  # fmt: skip
    budget = max(1, round(batch_seconds * rate))
    groups = batches(lengths, budget)
    rows: list[Row] = []
    errors: list[tuple[str, str, str]] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        stream_above = budget if codec.causal else None
        pending = _submit(pool, items, groups, 0, rate, codec.device, stream_above)
        for n in range(len(groups)):
            loaded = pending.result()
            if n + 1 < len(groups):
                pending = _submit(pool, items, groups, n + 1, rate, codec.device, stream_above)
            stats = _encode_batch(codec, loaded, num_codebooks, rows, errors, budget)
            if progress is not None:
                progress(stats)
    model = {"name": codec.name, "fingerprint": codec.fingerprint}
    return write_shard(out, plan, shard, rows, errors, model, rank)


def _submit(
    pool: ThreadPoolExecutor,
    items: list[PlannedItem],
    groups: list[list[int]],
    n: int,
    rate: int,
    device: torch.device,
    stream_above: int | None,
) -> Future[list[Loaded]]:
    return pool.submit(lambda: [load_item(items[i], rate, device, stream_above) for i in groups[n]])


def _encode_batch(
    codec: Codec,
    loaded: list[Loaded],
    num_codebooks: int,
    rows: list[Row],
    errors: list[tuple[str, str, str]],
    budget: int,
) -> EncodeStats:
    """Code the readable items of one batch into ``rows``; the rest go to ``errors``.

    ``budget``: the most model-rate samples per model call (``batch_seconds``).
    """
    stats = EncodeStats()
    good = [x for x in loaded if x.ok]
    for x in loaded:
        if not x.ok:
            errors.append((x.item.id, x.item.path, x.error or "unreadable"))
            stats.errors += 1
    if not good:
        return stats
    if len(good) == 1 and codec.causal and (good[0].streamed or good[0].wav.shape[-1] > budget):
        return _encode_long(codec, good[0], num_codebooks, rows, errors, budget, stats)
    lengths = torch.tensor([x.wav.shape[-1] for x in good])
    wav = torch.zeros(len(good), 1, int(lengths.max()), device=codec.device)
    for i, x in enumerate(good):
        wav[i, 0, : x.wav.shape[-1]] = x.wav
    codes = codec.encode(wav, codec.sample_rate, lengths=lengths, num_codebooks=num_codebooks)
    frames = codes.frame_lengths.tolist()
    data = codes.codes.cpu().numpy()
    for i, x in enumerate(good):
        # An int16 copy: a view would keep the whole int64 batch alive until the shard is written.
        codes_i = data[i, :, : frames[i]].astype(np.int16)
        rows.append(Row(x.item.id, x.item.path, x.sample_rate, x.num_samples, codes_i, x.item.meta))
    stats.items = len(good)
    stats.audio_seconds = sum(x.num_samples / x.sample_rate for x in good)
    stats.frames = sum(frames)
    stats.padded_frames = len(good) * max(codes.num_frames, EXACT_FRAMES)
    return stats


def _encode_long(
    codec: Codec,
    x: Loaded,
    num_codebooks: int,
    rows: list[Row],
    errors: list[tuple[str, str, str]],
    budget: int,
    stats: EncodeStats,
) -> EncodeStats:
    """Code one item longer than the budget in chunks (see the module docstring)."""
    frames = chunk_frames(codec, budget / codec.sample_rate)
    step = frames * codec.hop_length
    coder = AudioEncoder(codec, 1, codec.sample_rate, num_codebooks, chunk_frames=frames)
    path = text_path(x.item.path)
    parts = []
    try:
        source = None if x.wav is not None else AudioFileSource(path, step / codec.sample_rate)
        for block in _mono_blocks(x, source, step):
            parts.append(coder.push(block))
    except Exception as err:  # damaged part-way: an error row, as for any unreadable file
        errors.append((x.item.id, x.item.path, reason(err, path)))
        stats.errors += 1
        return stats
    codes = torch.cat([*parts, coder.finish()], dim=-1)[0].cpu().numpy().astype(np.int16)
    num_samples = x.num_samples if source is None else source.samples_read
    rows.append(Row(x.item.id, x.item.path, x.sample_rate, num_samples, codes, x.item.meta))
    stats.items, stats.audio_seconds = 1, num_samples / x.sample_rate
    stats.frames = stats.padded_frames = codes.shape[-1]
    return stats


def _mono_blocks(x: Loaded, source: AudioFileSource | None, step: int) -> Iterator[torch.Tensor]:
    """``[1, n]`` blocks of the item at the model rate: of its samples, or read from its file."""
    if source is None:
        wav = x.wav[None]
        yield from (wav[:, i : i + step] for i in range(0, wav.shape[-1], step))
        return
    for block in source.blocks():
        yield block.mean(0, keepdim=True) if block.shape[0] > 1 else block
