"""Codes as language-model tokens: the vocabulary (with special tokens) and the two layouts.

:class:`TokenLayout` says how a padded batch of codes ``[B, K, F]`` with ``frame_lengths``
becomes LM tokens and back:

* parallel streams (``flat=False``): ``[B, K, S]``, one stream per level, each with its own
  vocabulary of ``codebook_size + 3`` ids (codes keep their values; pad, begin and end
  follow), levels delayed by ``delays``.  ``S = begin + F + max(delays) + end``.
* flattened (``flat=True``): ``[B, N]``, one stream of ``K * codebook_size + 3`` ids, level
  ``k`` offset by ``k * codebook_size``, frame after frame.  ``N = begin + F * K + end``.

Every id is further shifted by ``offset``, so audio tokens can share one vocabulary with a
text tokenizer: with a text vocabulary of ``V`` ids, ``offset=V`` puts the audio ids at
``V .. V + vocab_size - 1`` (:attr:`TokenLayout.ranges` and :meth:`TokenLayout.describe`
list them).  The special tokens lie outside every code range, so a token is a code or a
special, never both.  The begin token (optional) opens every item, frames past an item's
length are pad, and the end token (optional) follows the item's last frame: on every level,
at that level's delayed position, in the parallel layout; once in the flattened one.  For
``delays = [0, 1]``, 2 frames of item lengths 2 and 1 (``B`` begin, ``E`` end, ``.`` pad)::

    item 0   level 0  B  a0 a1 E  .        item 1  level 0  B  a0 E  .  .
             level 1  B  .  b0 b1 E                level 1  B  .  b0 E  .

Reading tokens back (:meth:`TokenLayout.to_codes`, and :class:`codec.tokens.StepDecoder`
while an LM generates) follows one policy: an item's frames run up to its first pad or end
token (the whole frame in which any level holds one), so a generation that ends early, ends
ragged across levels or is cut mid-frame comes back as its whole frames; every token before
that must be a code of its own level, and anything else there (an id outside the layout, the
begin token, a code of another level in the flattened layout) is refused with a
``ValueError`` naming its position.  Tokens after an item's end are not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from codec.tokens.layout import (
    apply_delay_pattern,
    as_int64,
    check_delays,
    check_frame_lengths,
    first_true,
    flatten_codes,
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
        offset: the first id of the layout: every id is shifted by it (e.g. a text
            tokenizer's vocabulary size, so text and audio share one vocabulary).
    """

    num_codebooks: int
    codebook_size: int
    delays: tuple[int, ...] = ()
    flat: bool = False
    begin: bool = True
    end: bool = True
    offset: int = 0

    def __post_init__(self) -> None:
        for key in ("num_codebooks", "codebook_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TokenLayout.{key} must be a positive integer, got {value!r}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise ValueError(f"TokenLayout.offset must be a non-negative integer, got {self.offset!r}")
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
        """Ids of this layout: ``codebook_size + 3`` (parallel, each level) or ``K * codebook_size + 3``."""
        return self._first_special + len(SPECIALS)

    @property
    def vocab_end(self) -> int:
        """One past the largest id (``offset + vocab_size``): the size of an LM vocabulary
        holding ``offset`` other ids first."""
        return self.offset + self.vocab_size

    @property
    def offsets(self) -> tuple[int, ...]:
        """Per level, what a code's token id adds to it (``offset + k * codebook_size`` when
        flat, else ``offset``)."""
        step = self.codebook_size if self.flat else 0
        return tuple(self.offset + k * step for k in range(self.num_codebooks))

    @property
    def pad_id(self) -> int:
        return self.offset + self._first_special

    @property
    def begin_id(self) -> int:
        return self.offset + self._first_special + 1

    @property
    def end_id(self) -> int:
        return self.offset + self._first_special + 2

    @property
    def specials(self) -> dict[str, int]:
        """``{"pad": id, "begin": id, "end": id}``."""
        return {name: self.pad_id + i for i, name in enumerate(SPECIALS)}

    @property
    def ranges(self) -> dict[str, range]:
        """Every id of the layout by meaning: ``"level k"`` (its codes), ``"pad"``, ``"begin"``,
        ``"end"``; in the parallel layout all levels share one range (each its own stream)."""
        out = {f"level {k}": range(o, o + self.codebook_size) for k, o in enumerate(self.offsets)}
        return out | {name: range(i, i + 1) for name, i in self.specials.items()}

    def describe(self) -> str:
        """The vocabulary as a table: one line per range of ids."""
        lines = [f"{'ids':>15}  meaning"]
        for name, ids in self.ranges.items():
            span = f"{ids.start}..{ids.stop - 1}" if len(ids) > 1 else str(ids.start)
            lines.append(f"{span:>15}  {name + ' codes' if name.startswith('level') else name}")
        if self.offset:
            lines.append(f"{'0..' + str(self.offset - 1):>15}  not this layout's (offset {self.offset})")
        return "\n".join(lines)

    @property
    def _first_special(self) -> int:
        return self.codebook_size * (self.num_codebooks if self.flat else 1)

    def num_steps(self, num_frames: int) -> int:
        """Length of the layout of ``num_frames`` frames (``S`` or ``N`` above)."""
        body = num_frames * self.num_codebooks if self.flat else num_frames + max(self.delays)
        return int(self.begin) + body + int(self.end)

    def classify(
        self, ids: torch.Tensor, levels: torch.Tensor | int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Read int64 ``ids`` as tokens of ``levels`` (broadcast against ``ids``).

        Returns ``(codes, is_code, is_stop)``: the code each id stands for at its level,
        whether it is one, and whether the id is the pad or end token (which end an item).
        """
        base = torch.as_tensor(self.offsets, device=ids.device)[levels]
        codes = ids - base
        is_code = (codes >= 0) & (codes < self.codebook_size)
        return codes, is_code, (ids == self.pad_id) | (ids == self.end_id)

    def token_problem(self, token: int, level: int) -> str:
        """Why ``token`` cannot stand at ``level`` before an item's end (for error messages)."""
        if not self.offset <= token < self.vocab_end:
            return f"outside this layout's ids {self.offset}..{self.vocab_end - 1}"
        if token == self.begin_id:
            return "the begin token inside an item"
        first, found = self.offsets[level], (token - self.offset) // self.codebook_size
        span = f"{first}..{first + self.codebook_size - 1}"
        return f"a code of level {found}, where level {level}'s codes ({span}) belong"

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
        codes = as_int64(codes, 3, "codes")
        b, k, f = codes.shape
        if k != self.num_codebooks:
            raise ValueError(f"codes have {k} codebooks, this layout {self.num_codebooks}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes out of range: values must be in 0..{self.codebook_size - 1}")
        lengths = check_frame_lengths(frame_lengths, b, f).to(codes.device)
        # Built with ids from 0, then shifted: every id, code or special, moves by the offset.
        pad, begin = self._first_special, self._first_special + 1
        if self.flat:
            flat = flatten_codes(codes, self.codebook_size)[:, None, :]  # one "level" of F * K
            body = self._close(flat, lengths * k)[:, 0]
        else:
            body = apply_delay_pattern(self._close(codes, lengths), pad, self.delays)
        if self.begin:
            body = torch.cat([body.new_full((*body.shape[:-1], 1), begin), body], dim=-1)
        return body + self.offset

    def _close(self, body: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, L, n]``: positions past ``lengths`` padded, then the end token at ``lengths``."""
        pad, end = self._first_special, self._first_special + 2
        body = mask_frames(body, lengths, pad)
        if not self.end:
            return body
        body = torch.cat([body, body.new_full((*body.shape[:-1], 1), pad)], dim=-1)
        where = lengths[:, None, None].expand(-1, body.shape[1], 1)
        return body.scatter(2, where, end)

    def to_codes(self, tokens: torch.Tensor) -> FramedCodes:
        """Inverse of :meth:`to_tokens`, and the reader of generated tokens (module docstring).

        Args: tokens ``[B, K, S]`` (parallel) or ``[B, N]`` (flat), any integer dtype.
        Returns: :class:`FramedCodes` of ``F`` frames: as many as :meth:`num_steps` implies
            for the length given, or more when an item runs on without an end token.
        Raises: ``ValueError`` naming the first token that is neither a code of its level nor
            the pad or end token, before its item's end.
        """
        tokens = as_int64(tokens, 2 if self.flat else 3, "tokens")
        if not self.flat and tokens.shape[1] != self.num_codebooks:
            raise ValueError(f"tokens have {tokens.shape[1]} streams, this layout {self.num_codebooks}")
        if self.begin:
            starts = tokens[..., 0].reshape(tokens.shape[0], -1) if tokens.shape[-1] else None
            wrong = (starts != self.begin_id).any(dim=1) if starts is not None else None
            if wrong is None or bool(wrong.any()):
                item = int(wrong.nonzero()[0]) if wrong is not None else 0
                raise ValueError(f"tokens of item {item} do not start with the begin token ({self.begin_id})")
            tokens = tokens[..., 1:]
        codes, lengths = self._read_flat(tokens) if self.flat else self._read_parallel(tokens)
        past = torch.arange(codes.shape[-1], device=codes.device)[None, :] >= lengths[:, None].to(
            codes.device
        )
        return FramedCodes(codes.masked_fill(past[:, None, :], 0).contiguous(), lengths.to("cpu"))

    def _read_flat(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = tokens.shape
        k = self.num_codebooks
        levels = torch.arange(n, device=tokens.device) % k
        codes, is_code, is_stop = self.classify(tokens, levels)
        stop = first_true(is_stop, n)
        bad = first_true(~is_code & ~is_stop, n)
        refused = (bad < stop).nonzero()
        if len(refused):
            item = int(refused[0])
            pos = int(bad[item])
            self._refuse(f"tokens[{item}, {pos + self.begin}]", int(tokens[item, pos]), pos % k)
        lengths = stop // k
        frames = max((n - int(self.end)) // k, int(lengths.max()) if b else 0, 0)
        grid = codes[:, : frames * k].reshape(b, frames, k).transpose(1, 2)
        return grid, lengths

    def _read_parallel(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, k, s = tokens.shape
        frames = max(s - max(self.delays), 0)  # frames whose every level has arrived
        grid = undo_delay_pattern(tokens[..., : frames + max(self.delays)], self.delays) if frames else None
        if grid is None:
            grid = tokens.new_zeros(b, k, 0)
        levels = torch.arange(k, device=tokens.device)[None, :, None]
        codes, is_code, is_stop = self.classify(grid, levels)
        stop = first_true(is_stop.any(dim=1), frames)
        bad_entries = ~is_code & ~is_stop
        bad = first_true(bad_entries.any(dim=1), frames)
        # The frame holding the end may itself hold nothing else but codes and specials.
        refused = ((bad <= stop) & (bad < frames)).nonzero()
        if len(refused):
            item = int(refused[0])
            f = int(bad[item])
            level = int(first_true(bad_entries[item, :, f][None], 0)[0])
            step = f + self.delays[level]
            self._refuse(
                f"tokens[{item}, {level}, {step + self.begin}]", int(tokens[item, level, step]), level
            )
        out = max(frames - int(self.end), int(stop.max()) if b else 0, 0)
        return codes[..., :out], stop

    def _refuse(self, where: str, token: int, level: int) -> None:
        raise ValueError(f"{where} = {token}: {self.token_problem(token, level)}")
