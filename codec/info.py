"""What ``codec info`` prints: a description of a model directory, token file, stream or audio file.

Every function returns a flat ``dict`` (JSON-serialisable) and raises a ``ValueError`` subclass
naming the path when it is none of these.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from codec import pretrained
from codec.audio import AudioError, audio_info
from codec.checkpoint import WEIGHTS_NAME, CheckpointError, model_fingerprint, read_config
from codec.fileformat import MAGIC, STREAM_MAGIC, TokenStreamReader, read_header
from codec.model import build_model, count_parameters
from codec.pretrained import NoBundledModelError


class DescribeError(ValueError):
    """The path is not a model directory, bundled model name, token file or audio file."""


def describe(target: str | Path) -> dict[str, Any]:
    """Describe a model directory, a bundled model name, a token file or stream, or an audio file."""
    path = Path(target)
    if path.is_dir():
        return describe_model(path)
    if path.is_file():
        return describe_file(path)
    text = str(target)
    if not path.exists() and "/" not in text and not path.suffix:
        try:
            return describe_model(pretrained.model_dir(text))
        except NoBundledModelError as err:
            raise DescribeError(f"{text}: {err}") from None
    raise DescribeError(f"{path}: no such file or directory")


def describe_model(folder: Path) -> dict[str, Any]:
    """A model directory's name, rate, frames, codebooks, bitrate, parameters and metadata."""
    cfg, metadata = read_config(folder)
    model = build_model(cfg)
    q = cfg.quantizer
    weights = folder / WEIGHTS_NAME
    return {
        "kind": "model", "path": str(folder), "name": cfg.name, "fingerprint": _fingerprint(folder),
        "weights": f"{weights.stat().st_size} bytes" if weights.is_file() else "missing",
        "parameters": count_parameters(model), "sample_rate": cfg.sample_rate, "hop_length": cfg.hop_length,
        "frame_rate": cfg.frame_rate, "causal": cfg.causal, "lookahead_samples": model.decoder_delay,
        "codebooks": q.total_codebooks, "codebook_size": q.codebook_size,
        "bitrate_bps": cfg.frame_rate * q.total_codebooks * math.log2(q.codebook_size),
        "bitrate_per_codebook_bps": cfg.frame_rate * math.log2(q.codebook_size),
        **({"metadata": metadata} if metadata else {}),
    }  # fmt: skip


def _fingerprint(folder: Path) -> str:
    try:
        return model_fingerprint(folder)
    except CheckpointError as err:
        return f"unavailable ({err})"


def describe_file(path: Path) -> dict[str, Any]:
    """A token file's or stream's header, frames, duration and bitrate, or an audio file's format."""
    with path.open("rb") as f:
        head = f.read(len(MAGIC))
    if head == MAGIC:
        h = read_header(path)
        extra = {"kind": "token file", "num_frames": h.num_frames, "duration_s": round(h.duration, 3)}
    elif head == STREAM_MAGIC:
        with path.open("rb") as f:
            reader = TokenStreamReader(f, str(path))
            frames = sum(c.shape[-1] for c in reader.frames())
        h, extra = reader.header, {"kind": "token stream", "num_frames": frames}
        if reader.end is not None:
            extra["duration_s"] = round(reader.end.original_num_samples / h.original_sample_rate, 3)
    else:
        try:
            info = audio_info(path)
        except AudioError:
            raise DescribeError(f"{path}: not a model directory, token file or audio file") from None
        return {
            "kind": "audio", "path": str(path), "sample_rate": info.sample_rate, "channels": info.channels,
            "num_samples": info.num_samples, "duration_s": round(info.duration, 3),
        }  # fmt: skip
    bitrate = h.frame_rate * h.num_codebooks * math.log2(h.codebook_size)
    return {
        "path": str(path),
        **extra,
        "model": h.model,
        **h.to_json(),
        "file_bytes": path.stat().st_size,
        "bitrate_bps": round(bitrate * h.channels, 3),
    }
