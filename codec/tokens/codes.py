"""The :class:`Codes` container: integer codes and what is needed to decode them exactly.

Multi-channel audio is coded per channel: rows are item-major, so row ``b * C + c`` is
channel ``c`` of item ``b``, and mono codes are simply ``[B, K, F]``.
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
