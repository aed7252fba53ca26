"""Audio file I/O (soundfile), resampling and channel handling (torchaudio), input validation.

Every problem with user input is an :class:`AudioError` whose message names the file or
argument and the problem, so the CLI can print it as one line.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from codec.atomic import atomic_write

# Extensions soundfile can write; reading accepts anything libsndfile recognises.
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


class AudioError(ValueError):
    """Audio input that cannot be used: missing, unreadable, empty, non-finite, wrong shape."""


@dataclass(frozen=True)
class Audio:
    """A waveform and its rate: ``wav [C, T]`` float32 and ``sample_rate`` in Hz.

    Unpacks like a pair (``wav, sr = load_audio(path)``) for the soundfile habit.
    """

    wav: torch.Tensor
    sample_rate: int

    def __iter__(self) -> Iterator[torch.Tensor | int]:
        yield self.wav
        yield self.sample_rate

    @property
    def duration(self) -> float:
        return self.wav.shape[-1] / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    """Header of an audio file: ``num_samples`` samples per channel at ``sample_rate``."""

    sample_rate: int
    channels: int
    num_samples: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of an audio file (no samples)."""
    path = _existing_file(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: not a readable audio file ({_short(err)})") from None
    if info.frames <= 0:  # soundfile's "frames" are samples per channel
        raise AudioError(f"{path}: empty audio (zero samples)")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def load_audio(path: str | Path) -> Audio:
    """Read a whole audio file: :class:`Audio` with ``wav [C, T]`` float32 in [-1, 1]."""
    path = _existing_file(path)
    check_wav_complete(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: not a readable audio file ({_short(err)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (zero samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    return Audio(torch.from_numpy(np.ascontiguousarray(data.T)), int(sr))


def check_wav_complete(path: Path) -> None:
    """Raise :class:`AudioError` if a WAV file holds less audio than its header promises.

    libsndfile silently shortens such files to the bytes present, so a cut-off recording
    would be coded without a word; this walks the RIFF chunks to compare (about 20 lines,
    no library exposes the declared size).
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                # 0 and 0xFFFFFFFF are placeholders written by streaming writers (ffmpeg, sox).
                if length not in (0, 0xFFFFFFFF) and pos + 8 + length > size:
                    raise AudioError(
                        f"{path}: truncated WAV file (header promises {length} bytes of audio, "
                        f"the file holds {size - pos - 8})"
                    )
                return
            pos += 8 + length + (length & 1)


def iter_audio_blocks(path: str | Path, block_samples: int) -> Iterator[torch.Tensor]:
    """Read an audio file in blocks of ``block_samples`` samples: yields ``[C, n]`` float32."""
    path = _existing_file(path)
    check_wav_complete(path)
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                data = f.read(block_samples, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    return
                if not np.isfinite(data).all():
                    raise AudioError(f"{path}: audio contains NaN or Inf samples")
                yield torch.from_numpy(np.ascontiguousarray(data.T))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: not a readable audio file ({_short(err)})") from None


def save_audio(path: str | Path, wav: torch.Tensor, sample_rate: int, subtype: str | None = None) -> None:
    """Write ``wav [C, T]`` atomically (temp file + rename); the format follows the extension.

    Samples are clipped to [-1, 1]; the default subtype is 16-bit PCM for WAV/FLAC.
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported output format (use one of {', '.join(sorted(WRITE_FORMATS))})")
    if wav.dim() != 2:
        raise AudioError(f"save_audio expects [C, T], got shape {tuple(wav.shape)}")
    data = wav.detach().to("cpu", torch.float32).clamp(-1.0, 1.0).numpy().T
    if subtype is None and fmt in ("WAV", "FLAC"):
        subtype = "PCM_16"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: sf.write(tmp, data, sample_rate, format=fmt, subtype=subtype), path.suffix)


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (identity when the rates match)."""
    if orig_sr == new_sr:
        return wav
    return AF.resample(wav, orig_sr, new_sr)


def resampled_length(length: int | torch.Tensor, orig_sr: int, new_sr: int) -> int | torch.Tensor:
    """Samples after resampling ``length`` samples: ``ceil(length * new_sr / orig_sr)``."""
    if isinstance(length, torch.Tensor):
        return torch.div(length * new_sr + orig_sr - 1, orig_sr, rounding_mode="floor")
    return -(-length * new_sr // orig_sr)


def as_batch(wav: torch.Tensor, name: str = "wav") -> torch.Tensor:
    """Check a waveform argument and return it as ``[B, C, T]`` float.

    Accepts ``[B, C, T]`` or a single mono clip ``[T]``; a 2-D tensor is ambiguous and refused.
    """
    if not isinstance(wav, torch.Tensor):
        raise AudioError(f"{name} must be a torch.Tensor, got {type(wav).__name__}")
    if wav.dim() == 1:
        wav = wav[None, None]
    elif wav.dim() != 3:
        raise AudioError(
            f"{name} must have shape [B, C, T] (or [T] for one mono clip), got {tuple(wav.shape)}; "
            "for a [C, T] clip use wav[None]"
        )
    if not wav.is_floating_point():
        raise AudioError(f"{name} must be a float tensor with samples in [-1, 1], got {wav.dtype}")
    if wav.shape[0] == 0 or wav.shape[1] == 0 or wav.shape[-1] == 0:
        raise AudioError(f"{name} is empty (shape {tuple(wav.shape)})")
    if not torch.isfinite(wav).all():
        raise AudioError(f"{name} contains NaN or Inf samples")
    return wav


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    return path


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]
