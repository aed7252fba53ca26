"""Audio as tensors: the :class:`Audio` result, resampling (torchaudio) and input validation.

No file I/O here (that is :mod:`codec.pipeline.audiofile`), so the tensor API can use it
without importing the file layer.  Every problem with user input is an :class:`AudioError`
whose message names the argument and the problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torchaudio.functional as AF

from codec.errors import InputError

# Bound on orig * new (rates reduced by their gcd) for the resampling filter: about 4 MB of
# float32 taps; every ratio of common rates (44100:16000 is 441:160) lies far below it.
MAX_RATIO_PRODUCT = 1 << 20


class AudioError(InputError):
    """Audio input that cannot be used: missing, unreadable, truncated, empty, non-finite, wrong shape."""


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


def resample_ratio(orig_sr: int, new_sr: int) -> tuple[int, int]:
    """The ``(orig, new)`` pair the resampling filter is built for.

    torchaudio builds a sinc kernel of about ``new * (orig + 2 * width)`` taps from the rates
    reduced by their gcd, so rates sharing few factors (16000 and 44101) would need gigabytes.
    Above :data:`MAX_RATIO_PRODUCT` the ratio is replaced by its closest continued-fraction
    convergent whose terms multiply to at most that bound: the kernel then stays a few MB.  The
    rate is then off by a relative 1e-4 at worst (96001 Hz is taken as 96000: 1e-5, a pitch
    shift of 0.0002 semitones, far below hearing); lengths are still exact, set from the true
    rates.
    """
    if orig_sr < 1 or new_sr < 1:
        raise AudioError(f"sample rates must be positive integers, got {orig_sr} and {new_sr}")
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    if orig * new <= MAX_RATIO_PRODUCT:
        return orig, new
    best = (orig, new)
    for num, den in _convergents(new, orig):
        if num * den > MAX_RATIO_PRODUCT:
            break
        if num > 0:
            best = (den, num)
    if best[0] * best[1] > MAX_RATIO_PRODUCT:  # a ratio beyond the bound: nearest integer ratio
        best = (max(1, round(orig / new)), 1) if orig > new else (1, max(1, round(new / orig)))
    return best


def _convergents(num: int, den: int) -> Iterator[tuple[int, int]]:
    """Continued-fraction convergents ``p / q`` of ``num / den``, in order of growing terms."""
    p0, q0, p1, q1 = 0, 1, 1, 0
    while den:
        a, (num, den) = num // den, (den, num % den)
        p0, q0, p1, q1 = p1, q1, a * p1 + p0, a * q1 + q0
        yield p1, q1


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (identity when the rates match).

    Returns ``[..., ceil(T * new_sr / orig_sr)]``; the filter's memory is bounded whatever the
    rates (see :func:`resample_ratio`).
    """
    if orig_sr == new_sr:
        return wav
    orig, new = resample_ratio(orig_sr, new_sr)
    out = AF.resample(wav, orig, new)
    want = int(resampled_length(wav.shape[-1], orig_sr, new_sr))
    if out.shape[-1] < want:
        return torch.nn.functional.pad(out, (0, want - out.shape[-1]))
    return out[..., :want]


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


def pad_clips(clips: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``[T_i]`` or ``[C, T_i]`` -> a zero-padded batch ``[B, C, max T_i]`` and ``lengths [B]``."""
    if not clips:
        raise AudioError("wav is an empty list of clips")
    rows = []
    for i, clip in enumerate(clips):
        if not isinstance(clip, torch.Tensor):
            raise AudioError(f"wav[{i}] must be a torch.Tensor, got {type(clip).__name__}")
        if clip.dim() not in (1, 2):
            raise AudioError(f"wav[{i}] must have shape [T] or [C, T], got {tuple(clip.shape)}")
        if not clip.is_floating_point():
            raise AudioError(f"wav[{i}] must be a float tensor with samples in [-1, 1], got {clip.dtype}")
        rows.append(clip if clip.dim() == 2 else clip[None])
    channels = {r.shape[0] for r in rows}
    if len(channels) > 1:
        raise AudioError(f"the clips have different channel counts {sorted(channels)}; give them one count")
    lengths = torch.tensor([r.shape[-1] for r in rows], dtype=torch.long)
    if int(lengths.min()) == 0:
        raise AudioError(f"wav[{int(lengths.argmin())}] is empty")
    dtype = rows[0].dtype
    for r in rows[1:]:
        dtype = torch.promote_types(dtype, r.dtype)
    batch = rows[0].new_zeros(len(rows), rows[0].shape[0], int(lengths.max()), dtype=dtype)
    for i, r in enumerate(rows):
        batch[i, :, : r.shape[-1]] = r.to(batch.device)
    return batch, lengths
