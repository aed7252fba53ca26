"""Token containers and language-model helpers.

:class:`Codes` carries integer codes with the lengths and metadata needed to decode them
exactly.  Multi-channel audio is coded per channel: rows are item-major, so row ``b * C + c``
is channel ``c`` of item ``b``, and mono codes are simply ``[B, K, F]``.

LM helpers: :func:`flatten_codes` / :func:`unflatten_tokens` (one token stream with per-level
vocabulary offsets) and :func:`apply_delay_pattern` / :func:`undo_delay_pattern` (codebook
``k`` shifted right by ``k`` frames, as in MusicGen-style parallel decoding).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Codes:
    """Codes of a batch and what is needed to decode them.

    Two ``Codes`` are equal when every field is (tensors by value, on any device); they are
    not hashable.

    Attributes:
        codes: ``[B * C, K, F]`` int64, frames past an item's ``frame_lengths`` hold codes of
            silence (mask them with :attr:`frame_lengths`).
        lengths: ``[B]`` int64 valid samples per item at ``sample_rate``.
        sample_rate: the model's sample rate.
        hop_length: samples per frame.
        codebook_size: entries per codebook.
        channels: C, channels per item.
        original_sample_rate: the input's sample rate (decode can restore it).
        original_lengths: ``[B]`` valid samples per item at ``original_sample_rate``.
        model: name of the model that made the codes (informational).
        fingerprint: that model's weights fingerprint (:func:`codec.checkpoint.weights_fingerprint`);
            decoding refuses codes of other weights.  "" when unknown (codes built by hand).
        config_hash: only for codes read from a version-1 token file, which recorded a hash of
            the model's config instead of a fingerprint; "" otherwise.
    """

    codes: torch.Tensor
    lengths: torch.Tensor
    sample_rate: int
    hop_length: int
    codebook_size: int
    channels: int = 1
    original_sample_rate: int | None = None
    original_lengths: torch.Tensor | None = None
    model: str = ""
    fingerprint: str = ""
    config_hash: str = ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Codes):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))

    __hash__ = None  # type: ignore[assignment]  # equality is by (mutable) tensor value

    def __post_init__(self) -> None:
        for key in ("sample_rate", "hop_length", "codebook_size", "channels"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Codes.{key} must be a positive integer, got {value!r}")
        if not isinstance(self.codes, torch.Tensor) or self.codes.dim() != 3:
            raise ValueError("Codes.codes must be a [B * C, K, F] tensor")
        if self.codes.shape[0] % self.channels:
            raise ValueError(
                f"Codes.codes has {self.codes.shape[0]} rows, not a multiple of {self.channels} channels"
            )
        for key in ("lengths", "original_lengths"):
            value = getattr(self, key)
            if value is None and key == "original_lengths":
                continue
            if not isinstance(value, torch.Tensor) or value.dim() != 1:
                raise ValueError(f"Codes.{key} must be a 1-D integer tensor, got {type(value).__name__}")
            if value.dtype.is_floating_point or value.dtype == torch.bool or value.is_complex():
                raise ValueError(f"Codes.{key} must hold integers, got {value.dtype}")

    @property
    def batch_size(self) -> int:
        return self.codes.shape[0] // self.channels

    @property
    def num_codebooks(self) -> int:
        return self.codes.shape[1]

    @property
    def num_frames(self) -> int:
        return self.codes.shape[2]

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def frame_lengths(self) -> torch.Tensor:
        """``[B]`` valid frames per item: ``ceil(lengths / hop_length)``."""
        return torch.div(self.lengths + self.hop_length - 1, self.hop_length, rounding_mode="floor")

    def bitrate(self) -> float:
        """Bits per second per channel at this number of codebooks."""
        return self.frame_rate * self.num_codebooks * math.log2(self.codebook_size)

    def to(self, device: str | torch.device) -> Codes:
        return dataclasses.replace(self, codes=self.codes.to(device))

    def truncate(self, num_codebooks: int) -> Codes:
        """The first ``num_codebooks`` levels: a valid lower-bitrate encoding of the same audio."""
        if not 1 <= num_codebooks <= self.num_codebooks:
            raise ValueError(f"num_codebooks must be in 1..{self.num_codebooks}, got {num_codebooks}")
        return dataclasses.replace(self, codes=self.codes[:, :num_codebooks].contiguous())

    def item(self, index: int) -> Codes:
        """Item ``index`` alone (all its channels), cut to its own number of frames."""
        if not -self.batch_size <= index < self.batch_size:
            raise IndexError(f"item {index} out of range for a batch of {self.batch_size}")
        index %= self.batch_size
        frames = int(self.frame_lengths[index])
        rows = self.codes[index * self.channels : (index + 1) * self.channels, :, :frames]
        orig = None if self.original_lengths is None else self.original_lengths[index : index + 1]
        return dataclasses.replace(
            self, codes=rows.contiguous(), lengths=self.lengths[index : index + 1], original_lengths=orig
        )


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu())
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False
    return a == b


def flatten_codes(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Interleave levels frame by frame into one token stream with disjoint vocabularies.

    Args: codes ``[B, K, F]``. Returns tokens ``[B, F * K]``: frame 0 level 0..K-1, frame 1, ...,
    where level ``k`` uses ids ``k * codebook_size .. (k + 1) * codebook_size - 1``.
    """
    k = codes.shape[1]
    offsets = torch.arange(k, device=codes.device)[None, :, None] * codebook_size
    return (codes + offsets).transpose(1, 2).reshape(codes.shape[0], -1)


def unflatten_tokens(tokens: torch.Tensor, num_codebooks: int, codebook_size: int) -> torch.Tensor:
    """Inverse of :func:`flatten_codes`. Args: tokens ``[B, F * K]``. Returns codes ``[B, K, F]``."""
    if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int) or num_codebooks < 1:
        raise ValueError(f"num_codebooks must be a positive integer, got {num_codebooks!r}")
    b, n = tokens.shape
    if n % num_codebooks:
        raise ValueError(f"token count {n} is not a multiple of num_codebooks={num_codebooks}")
    codes = tokens.reshape(b, n // num_codebooks, num_codebooks).transpose(1, 2)
    offsets = torch.arange(num_codebooks, device=tokens.device)[None, :, None] * codebook_size
    codes = codes - offsets
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError("tokens are not a flattened code stream (a token lies outside its level's range)")
    return codes.contiguous()


def apply_delay_pattern(codes: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Shift level ``k`` right by ``k`` frames, filling with ``pad_id``.

    Args: codes ``[B, K, F]``. Returns ``[B, K, F + K - 1]``.
    """
    b, k, f = codes.shape
    out = codes.new_full((b, k, f + k - 1), pad_id)
    for level in range(k):
        out[:, level, level : level + f] = codes[:, level]
    return out


def undo_delay_pattern(delayed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`apply_delay_pattern`. Args: ``[B, K, F + K - 1]``. Returns ``[B, K, F]``."""
    _, k, n = delayed.shape
    f = n - k + 1
    if f < 0:
        raise ValueError(f"a delayed sequence with {k} levels needs at least {k - 1} frames, got {n}")
    return torch.stack([delayed[:, level, level : level + f] for level in range(k)], dim=1)
