"""Codes as language-model tokens: the vocabulary (with special tokens) and the two layouts.

:class:`TokenLayout` says how a padded batch of codes ``[B, K, F]`` with ``frame_lengths``
becomes LM tokens and back:

* parallel streams (``flat=False``): ``[B, K, S]``, one stream per level, each with its own
  vocabulary of ``codebook_size + 3`` ids (codes keep their values; pad, begin and end
  follow), levels delayed by ``delays``.  ``S = begin + F + max(delays) + end``.
* flattened (``flat=True``): ``[B, N]``, one stream of ``K * codebook_size + 3`` ids, level
  ``k`` offset by ``k * codebook_size``, frame after frame.  ``N = begin + F * K + end``.

The special tokens lie outside every code range, so a token is a code or a special, never
both.  In both layouts the begin token (optional) opens every item, frames past an item's
length are pad, and the end token (optional) follows the item's last frame: on every level,
at that level's delayed position, in the parallel layout; once in the flattened one.  For
``delays = [0, 1]``, 2 frames of item lengths 2 and 1 (``B`` begin, ``E`` end, ``.`` pad)::

    item 0   level 0  B  a0 a1 E  .        item 1  level 0  B  a0 E  .  .
             level 1  B  .  b0 b1 E                level 1  B  .  b0 E  .

The inverse (:meth:`TokenLayout.to_codes`) reads an item's frames up to the first frame in
which any level holds a special token, so generated sequences that end early or ragged
still come back as codes and ``frame_lengths``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from codec.tokens.layout import (
    apply_delay_pattern,
    check_delays,
    check_frame_lengths,
    check_int_tensor,
    flatten_codes,
    leading_frames,
    mask_frames,
    undo_delay_pattern,
)

SPECIALS = ("pad", "begin", "end")


@dataclass(frozen=True)
class FramedCodes:
    """Codes read back from LM tokens.

    Attributes:
        codes: ``[B, K, F]`` int64; frames past an item's length hold 0.
        frame_lengths: ``[B]`` int64 valid frames per item.
    """

    codes: torch.Tensor
    frame_lengths: torch.Tensor


@dataclass(frozen=True)
class TokenLayout:
    """The vocabulary and layout of codes as LM tokens (see the module docstring).

    Attributes:
        num_codebooks: K, levels per frame.
        codebook_size: entries per codebook.
        delays: per-level delays of the parallel layout (``()`` = none, all levels on time;
            :func:`~codec.tokens.staircase_delays`, :func:`~codec.tokens.acoustic_delays` or
            any ``K`` non-negative ints).  The flattened layout takes none.
        flat: one flattened stream instead of ``K`` parallel ones.
        begin: open every item with the begin token.
        end: put the end token after every item's last frame.
    """

    num_codebooks: int
    codebook_size: int
    delays: tuple[int, ...] = ()
    flat: bool = False
    begin: bool = True
    end: bool = True

    def __post_init__(self) -> None:
        for key in ("num_codebooks", "codebook_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TokenLayout.{key} must be a positive integer, got {value!r}")
        for key in ("flat", "begin", "end"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"TokenLayout.{key} must be True or False, got {getattr(self, key)!r}")
        given = self.delays if isinstance(self.delays, torch.Tensor) or len(self.delays) else None
        delays = (0,) * self.num_codebooks if given is None else check_delays(given, self.num_codebooks)
        if self.flat and any(delays):
            raise ValueError("the flattened layout takes no delays (it already orders levels within a frame)")
        object.__setattr__(self, "delays", delays)

    # -- vocabulary -----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Ids per stream: ``codebook_size + 3`` (parallel, each level) or ``K * codebook_size + 3``."""
        return self._first_special + len(SPECIALS)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Per level, what a code's token id adds to it (``k * codebook_size`` when flat, else 0)."""
        step = self.codebook_size if self.flat else 0
        return tuple(k * step for k in range(self.num_codebooks))

    @property
    def pad_id(self) -> int:
        return self._first_special

    @property
    def begin_id(self) -> int:
        return self._first_special + 1

    @property
    def end_id(self) -> int:
        return self._first_special + 2

    @property
    def specials(self) -> dict[str, int]:
        """``{"pad": id, "begin": id, "end": id}``."""
        return {name: self._first_special + i for i, name in enumerate(SPECIALS)}

    @property
    def _first_special(self) -> int:
        return self.codebook_size * (self.num_codebooks if self.flat else 1)

    def num_steps(self, num_frames: int) -> int:
        """Length of the layout of ``num_frames`` frames (``S`` or ``N`` above)."""
        body = num_frames * self.num_codebooks if self.flat else num_frames + max(self.delays)
        return int(self.begin) + body + int(self.end)

    # -- layouts --------------------------------------------------------------------------------

    def to_tokens(
        self, codes: torch.Tensor, frame_lengths: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """Lay out a padded batch.

        Args:
            codes: ``[B, K, F]`` integer codes (e.g. ``Codes.codes`` of mono audio).
            frame_lengths: ``[B]`` valid frames per item (default: all ``F``); the frames past
                it become pad.
        Returns: int64 ``[B, K, S]`` (parallel) or ``[B, N]`` (flat).
        """
        check_int_tensor(codes, 3, "codes")
        b, k, f = codes.shape
        if k != self.num_codebooks:
            raise ValueError(f"codes have {k} codebooks, this layout {self.num_codebooks}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes out of range: values must be in 0..{self.codebook_size - 1}")
        lengths = check_frame_lengths(frame_lengths, b, f).to(codes.device)
        codes = codes.to(torch.long)
        if self.flat:
            flat = flatten_codes(codes, self.codebook_size)[:, None, :]  # one "level" of F * K
            body = self._close(flat, lengths * k)[:, 0]
        else:
            body = apply_delay_pattern(self._close(codes, lengths), self.pad_id, self.delays)
        if self.begin:
            body = torch.cat([body.new_full((*body.shape[:-1], 1), self.begin_id), body], dim=-1)
        return body

    def _close(self, body: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, L, n]``: positions past ``lengths`` padded, then the end token at ``lengths``."""
        body = mask_frames(body, lengths, self.pad_id)
        if not self.end:
            return body
        body = torch.cat([body, body.new_full((*body.shape[:-1], 1), self.pad_id)], dim=-1)
        where = lengths[:, None, None].expand(-1, body.shape[1], 1)
        return body.scatter(2, where, self.end_id)

    def to_codes(self, tokens: torch.Tensor) -> FramedCodes:
        """Inverse of :meth:`to_tokens`: codes and ``frame_lengths`` back from a layout.

        Each item's frames run up to the first frame in which any level holds a special token.

        Args: tokens ``[B, K, S]`` (parallel) or ``[B, N]`` (flat), ids in ``0..vocab_size - 1``.
        Returns: :class:`FramedCodes` with ``F`` frames as :meth:`num_steps` implies.
        """
        check_int_tensor(tokens, 2 if self.flat else 3, "tokens")
        if not self.flat and tokens.shape[1] != self.num_codebooks:
            raise ValueError(f"tokens have {tokens.shape[1]} streams, this layout {self.num_codebooks}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"tokens out of range: ids must be in 0..{self.vocab_size - 1}")
        if self.begin:
            if tokens.shape[-1] == 0 or not bool((tokens[..., 0] == self.begin_id).all()):
                raise ValueError(f"tokens do not start with the begin token ({self.begin_id})")
            tokens = tokens[..., 1:]
        tokens = tokens.to(torch.long)
        k, extra = self.num_codebooks, int(self.end)
        if self.flat:
            if (tokens.shape[-1] - extra) % k or tokens.shape[-1] < extra:
                raise ValueError(
                    f"{tokens.shape[-1] + self.begin} tokens are not a flattened layout of {k} levels"
                )
            f = (tokens.shape[-1] - extra) // k
            grid = tokens[:, : f * k].reshape(tokens.shape[0], f, k).transpose(1, 2)
            grid = grid - torch.tensor(self.offsets, device=tokens.device)[None, :, None]
        else:
            f = tokens.shape[-1] - max(self.delays) - extra
            if f < 0:
                raise ValueError(f"{tokens.shape[-1] + self.begin} steps are too few for this layout")
            grid = undo_delay_pattern(tokens, self.delays)[..., :f]
        is_code = (grid >= 0) & (grid < self.codebook_size)
        lengths = leading_frames(is_code.all(dim=1))
        past = torch.arange(f, device=grid.device)[None, :] >= lengths[:, None]
        codes = grid.masked_fill(past[:, None, :], 0).contiguous()
        return FramedCodes(codes, lengths.to("cpu"))
