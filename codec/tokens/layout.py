"""Layouts of codes for language models, each with its inverse (plain tensor functions).

* :func:`flatten_codes` / :func:`unflatten_tokens`: one token stream, frame by frame, level
  ``k`` offset by ``k * codebook_size`` so levels never share an id.
* :func:`apply_delay_pattern` / :func:`undo_delay_pattern`: level ``k`` shifted right by
  ``delays[k]`` frames, so that an LM emitting one column ``[K]`` per step sees the coarse
  levels of a frame before its fine ones.  :func:`staircase_delays` is MusicGen's
  ``[0, 1, 2, ...]``, :func:`acoustic_delays` Moshi's ``[0, 1, 1, ...]``; any non-negative
  vector works.
* :func:`mask_frames`: frames past each item's ``frame_lengths`` (which hold codes of silence
  in a padded batch) replaced by a fill value, so they never leak into a layout.

:class:`codec.tokens.TokenLayout` puts these together with special tokens.  The delayed
layout, for ``delays = [0, 1, 2]``, ``F = 3`` frames (``a, b, c`` the levels, ``.`` the pad)::

    step     0   1   2   3   4
    level 0  a0  a1  a2  .   .
    level 1  .   b0  b1  b2  .
    level 2  .   .   c0  c1  c2

Frame ``f`` is complete at step ``f + max(delays)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_int_tensor(x: object, dims: int, name: str) -> torch.Tensor:
    """Raise ``ValueError`` unless ``x`` is an integer tensor with ``dims`` dimensions; return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name} must be an integer tensor, got {x.dtype}")
    if x.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(x.shape)}")
    return x


def as_int64(x: object, dims: int, name: str) -> torch.Tensor:
    """:func:`check_int_tensor`, then int64: any integer dtype works, the unsigned ones included
    (PyTorch has no min/max for uint16/32/64; a uint64 above the int64 range turns negative,
    which every range check then refuses)."""
    return check_int_tensor(x, dims, name).to(torch.long)


def first_true(mask: torch.Tensor, default: int) -> torch.Tensor:
    """``[B, N]`` bool -> ``[B]`` int64: the index of each row's first True, else ``default``."""
    if mask.shape[-1] == 0:
        return torch.full(mask.shape[:-1], default, dtype=torch.long, device=mask.device)
    first = mask.to(torch.uint8).argmax(dim=-1)  # argmax returns the first of equal maxima
    return torch.where(mask.any(dim=-1), first, torch.full_like(first, default))


def staircase_delays(num_codebooks: int) -> tuple[int, ...]:
    """MusicGen's delays: level ``k`` waits ``k`` steps (``[0, 1, 2, ..., K - 1]``)."""
    return tuple(range(_positive("num_codebooks", num_codebooks)))


def acoustic_delays(num_codebooks: int, delay: int = 1) -> tuple[int, ...]:
    """Moshi's acoustic delay: level 0 on time, all others ``delay`` steps late (``[0, 1, 1, ...]``)."""
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ValueError(f"delay must be a non-negative integer, got {delay!r}")
    return (0,) + (delay,) * (_positive("num_codebooks", num_codebooks) - 1)


def check_delays(delays: Sequence[int] | torch.Tensor | None, num_codebooks: int) -> tuple[int, ...]:
    """``delays`` as a tuple of ``num_codebooks`` non-negative ints; ``None`` means the staircase."""
    if delays is None:
        return staircase_delays(num_codebooks)
    if isinstance(delays, torch.Tensor):
        check_int_tensor(delays, 1, "delays")
        delays = delays.tolist()
    if isinstance(delays, (str, bytes)) or not isinstance(delays, Sequence):
        raise TypeError(f"delays must be a sequence of integers, got {type(delays).__name__}")
    out = tuple(delays)
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in out):
        raise ValueError(f"delays must be non-negative integers, got {list(out)}")
    if len(out) != num_codebooks:
        raise ValueError(f"delays has {len(out)} entries for {num_codebooks} codebooks")
    return out


def flatten_codes(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Interleave levels frame by frame into one token stream with disjoint vocabularies.

    Args: codes ``[B, K, F]``. Returns tokens ``[B, F * K]``: frame 0 level 0..K-1, frame 1, ...,
    where level ``k`` uses ids ``k * codebook_size .. (k + 1) * codebook_size - 1``.
    """
    codes = as_int64(codes, 3, "codes")
    k = codes.shape[1]
    offsets = torch.arange(k, device=codes.device)[None, :, None] * codebook_size
    return (codes + offsets).transpose(1, 2).reshape(codes.shape[0], -1)


def unflatten_tokens(tokens: torch.Tensor, num_codebooks: int, codebook_size: int) -> torch.Tensor:
    """Inverse of :func:`flatten_codes`. Args: tokens ``[B, F * K]``. Returns codes ``[B, K, F]``."""
    _positive("num_codebooks", num_codebooks)
    tokens = as_int64(tokens, 2, "tokens")
    b, n = tokens.shape
    if n % num_codebooks:
        raise ValueError(f"token count {n} is not a multiple of num_codebooks={num_codebooks}")
    codes = tokens.reshape(b, n // num_codebooks, num_codebooks).transpose(1, 2)
    offsets = torch.arange(num_codebooks, device=tokens.device)[None, :, None] * codebook_size
    codes = codes - offsets
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError("tokens are not a flattened code stream (a token lies outside its level's range)")
    return codes.contiguous()


def apply_delay_pattern(
    codes: torch.Tensor, pad_id: int, delays: Sequence[int] | torch.Tensor | None = None
) -> torch.Tensor:
    """Shift level ``k`` right by ``delays[k]`` frames, filling the gaps with ``pad_id``.

    Args:
        codes: ``[B, K, F]`` integers.
        pad_id: the value of every position that holds no code.
        delays: ``K`` non-negative ints (default: :func:`staircase_delays`).
    Returns: ``[B, K, F + max(delays)]``.
    """
    check_int_tensor(codes, 3, "codes")
    b, k, f = codes.shape
    delays = check_delays(delays, k)
    out = codes.new_full((b, k, f + max(delays)), pad_id)
    for level, d in enumerate(delays):
        out[:, level, d : d + f] = codes[:, level]
    return out


def undo_delay_pattern(
    delayed: torch.Tensor, delays: Sequence[int] | torch.Tensor | None = None
) -> torch.Tensor:
    """Inverse of :func:`apply_delay_pattern`.

    Args: delayed ``[B, K, F + max(delays)]``; delays as given to :func:`apply_delay_pattern`.
    Returns: ``[B, K, F]``.
    """
    check_int_tensor(delayed, 3, "delayed")
    _, k, n = delayed.shape
    delays = check_delays(delays, k)
    f = n - max(delays)
    if f < 0:
        raise ValueError(f"a sequence delayed by up to {max(delays)} steps needs at least that many, got {n}")
    return torch.stack([delayed[:, level, d : d + f] for level, d in enumerate(delays)], dim=1)


def check_frame_lengths(
    frame_lengths: torch.Tensor | Sequence[int] | None, batch: int, frames: int
) -> torch.Tensor:
    """``frame_lengths`` as a ``[B]`` int64 CPU tensor of values in ``0..frames`` (default: ``frames``)."""
    if frame_lengths is None:
        return torch.full((batch,), frames, dtype=torch.long)
    if not isinstance(frame_lengths, torch.Tensor):
        try:
            frame_lengths = torch.as_tensor(frame_lengths)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"frame_lengths must be {batch} integers, got {frame_lengths!r}") from None
    check_int_tensor(frame_lengths, 1, "frame_lengths")
    if frame_lengths.shape[0] != batch:
        raise ValueError(f"frame_lengths has {frame_lengths.shape[0]} entries for a batch of {batch}")
    frame_lengths = frame_lengths.to("cpu", torch.long)
    if batch and (int(frame_lengths.min()) < 0 or int(frame_lengths.max()) > frames):
        raise ValueError(
            f"frame_lengths must be in 0..{frames} (the frames given), got {frame_lengths.tolist()}"
        )
    return frame_lengths


def mask_frames(
    codes: torch.Tensor, frame_lengths: torch.Tensor | Sequence[int] | None, fill: int
) -> torch.Tensor:
    """Frames at or past each item's length set to ``fill`` (a new tensor).

    Args: codes ``[B, K, F]``; frame_lengths ``[B]`` valid frames per item; fill the value put there.
    Returns: ``[B, K, F]``.
    """
    check_int_tensor(codes, 3, "codes")
    lengths = check_frame_lengths(frame_lengths, codes.shape[0], codes.shape[2])
    past = torch.arange(codes.shape[2])[None, :] >= lengths[:, None]
    return codes.masked_fill(past[:, None, :].to(codes.device), fill)
