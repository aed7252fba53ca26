"""What ``codec info`` prints: a description of a model, token file, stream or audio file.

A model is a model directory, a bundled name, or a backend spec (``dac:descript/dac_16khz``,
see :mod:`codec.backends`), which is loaded to describe it (its weights fingerprint, rates,
codebooks, what it promises).

Every function returns a flat ``dict`` (JSON-serialisable) and raises a ``ValueError`` subclass
naming the path when it is none of these.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from codec import backends, pretrained
from codec.audio import AudioError
from codec.checkpoint import WEIGHTS_NAME, CheckpointError, model_fingerprint, read_config
from codec.errors import InputError
from codec.model import build_model, count_parameters
from codec.pipeline.audiofile import AudioFileSource
from codec.pretrained import NoBundledModelError
from codec.tokenfile.file import read_header
from codec.tokenfile.header import MAGIC, STREAM_MAGIC
from codec.tokenfile.stream import TokenStreamReader


class DescribeError(InputError):
    """The path is not a model directory, bundled model name, token file or audio file."""


def describe(target: str | Path) -> dict[str, Any]:
    """Describe a model directory, a bundled model name, a token file or stream, or an audio file."""
    path = Path(target)
    if path.is_dir():
        return describe_model(path)
    if path.is_file():
        return describe_file(path)
    if path.exists():
        raise DescribeError(f"{path}: not a regular file (a pipe or device): nothing to describe")
    if path.is_symlink():
        raise DescribeError(f"{path}: broken symbolic link")
    text = str(target)
    if backends.is_spec(text):
        return describe_backend(text)
    if "/" not in text and not path.suffix:
        if text not in pretrained.available():
            have = ", ".join(pretrained.available()) or "none"
            raise DescribeError(f"{text}: no such file, directory or bundled model (bundled: {have})")
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


def describe_backend(spec: str) -> dict[str, Any]:
    """A backend model's kind, name, fingerprint, rates, codebooks, bitrate and promises (loads it)."""
    from codec.api import Codec

    b = Codec.from_pretrained(spec)
    counts = b.codebook_counts()
    return {
        "kind": "model", "backend": b.kind, "spec": spec, "name": b.name, "fingerprint": b.fingerprint,
        "parameters": b.num_parameters(), "sample_rate": b.sample_rate, "hop_length": b.hop_length,
        "frame_rate": b.frame_rate, "causal": b.causal, "streams": b.causal, "lookahead_samples": b.lookahead,
        "codebooks": b.total_codebooks, "codebook_size": b.codebook_size,
        **({"codebook_counts": list(counts)} if len(counts) != b.total_codebooks else {}),
        "bitrate_bps": b.bitrate(), "bitrate_per_codebook_bps": b.frame_rate * math.log2(b.codebook_size),
        "batch_invariant": b.batch_invariant,
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
        return describe_audio(path)
    bitrate = h.frame_rate * h.num_codebooks * math.log2(h.codebook_size)
    return {
        "path": str(path),
        **extra,
        "model": h.model,
        **h.to_json(),
        "file_bytes": path.stat().st_size,
        "bitrate_bps": round(bitrate * h.channels, 3),
    }


def describe_audio(path: Path) -> dict[str, Any]:
    """An audio file's rate, channels and length; a length the header leaves open is counted."""
    try:
        source = AudioFileSource(path, block_seconds=60.0)
        num_samples = source.info.num_samples
        if num_samples is None:  # not declared (a FLAC stream without total_samples): read through
            for _ in source.blocks():
                pass
            num_samples = source.samples_read
    except AudioError as err:
        if "not a readable audio file" not in str(err):
            raise  # truncated, NaN, ...: say what is wrong with the audio
        raise DescribeError(f"{path}: not a model directory, token file or audio file") from None
    return {
        "kind": "audio", "path": str(path), "sample_rate": source.sample_rate, "channels": source.channels,
        "num_samples": num_samples, "duration_s": round(num_samples / source.sample_rate, 3),
    }  # fmt: skip
