"""Helpers of the tokenize tests: the corpus, and the reference every output row is checked
against (the file encoded alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from codec import Codec
from codec.pipeline.audiofile import load_audio
from tests.conftest import speech_like, threads

# (name, seconds, sample rate, channels): shorter than the minimum batch length (0.05 s), rates
# that need resampling, a stereo file (mixed to mono), lengths that are not whole frames.
CLIPS = [
    ("a/short", 0.05, 16000, 1),
    ("a/mid", 0.73, 16000, 1),
    ("b/rate8k", 0.41, 8000, 1),
    ("b/rate22k", 0.6, 22050, 1),
    ("stereo", 0.52, 16000, 2),
    ("long", 1.31, 16000, 1),
    ("c/other", 0.9, 44100, 1),
    ("c/tiny", 0.013, 16000, 1),
]


def make_corpus(root: Path) -> Path:
    """Write :data:`CLIPS` under ``root`` (float WAV) and one unreadable ``c/broken.wav``."""
    for n, (name, seconds, rate, channels) in enumerate(CLIPS):
        path = root / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        wav = speech_like(round(seconds * rate), rate, seed=n, channels=channels)
        sf.write(path, wav.T.numpy(), rate, subtype="FLOAT")
    (root / "c" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    return root


def alone(codec: Codec, path: str | Path, num_codebooks: int | None = None) -> np.ndarray:
    """``[K, F]``: the file read by the pipeline, mixed to mono, encoded on its own.

    Single-threaded, as ``codec tokenize`` codes on a CPU (several threads may split a short
    item's products differently from a batch's, and a near-tie in the quantizer then flips a code).
    """
    audio = load_audio(path)
    mono = audio.wav.mean(0, keepdim=True)
    with threads(1):
        codes = codec.encode(mono[None], audio.sample_rate, num_codebooks=num_codebooks)
    return codes.codes[0].numpy()


def read_rows(out: Path) -> list[dict]:
    """Every row of every shard file in ``out`` (each row's codes as ``[K, F]``)."""
    rows = []
    for shard in sorted((out / "shards").glob("shard-*.parquet")):
        for row in pq.read_table(shard).to_pylist():
            flat = np.asarray(row["codes"], dtype=np.int64)
            row["codes"] = flat.reshape(row["num_frames"], row["num_codebooks"]).T
            rows.append(row)
    return rows


def check_output(out: Path, codec: Codec, expected_ids: set[str], num_codebooks: int | None = None) -> None:
    """Every expected id exactly once, each equal to its file encoded alone."""
    rows = read_rows(out)
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(expected_ids), "items lost or duplicated"
    for row in rows:
        want = alone(codec, row["path"], num_codebooks)
        assert row["codes"].shape == want.shape, row["id"]
        assert np.array_equal(row["codes"], want), f"{row['id']}: codes differ from encoding it alone"


def all_ids() -> set[str]:
    return {name for name, *_ in CLIPS}


def flip_code_byte(shard: Path) -> None:
    """Flip one bit near the end of a shard's codes column data (a code changes; the file still
    parses, so only a checksum can tell)."""
    meta = pq.ParquetFile(shard).metadata.row_group(0)
    column = next(
        meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema.startswith("codes")
    )
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(shard.read_bytes())
    data[start + column.total_compressed_size - 3] ^= 0x01
    shard.write_bytes(bytes(data))
