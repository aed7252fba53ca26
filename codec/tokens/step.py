"""Streaming detokenizer: an LM's generated tokens in, audio out as soon as frames complete.

:class:`StepDecoder` takes what an LM emits per step in either layout of a
:class:`codec.tokens.TokenLayout`:

* parallel (delayed) layout: one column ``[B, K]`` per step; at step ``t`` level ``k``
  holds frame ``t - delays[k]``, so frame ``f`` is complete at step ``f + max(delays)``.
  The decoder keeps the last ``max(delays) + 1`` columns and assembles each frame when its
  last level arrives;
* flattened layout: one token ``[B]`` per step, levels ``0..K-1`` of a frame in turn, so a
  frame is complete every ``K`` steps.

Each complete frame is decoded through a :class:`codec.streaming.Stream`.  The output is
aligned with time zero (the decoder's pre-roll is dropped), so everything it returns, flush
included, is exactly ``codec.decode`` of the codes :meth:`TokenLayout.to_codes` reads from
the same tokens (to float rounding, as streaming is).

A model that cannot stream (DAC, EnCodec, ...: see :mod:`codec.backends`) decodes through
:class:`codec.backends.collect.CollectingStream`: the steps return no audio, and each item's
audio comes whole when it ends (at the latest at the flush), equal to decoding its frames.

Items end on their own, by the layout's reading policy: a pad or end token ends its item
(in the parallel layout, the whole frame in which any level holds one; in the flattened
layout, the frame it cuts is dropped).  From then on that item's audio is the decoder's
held-back tail (what a flush would give, so it equals decoding the item at its length)
followed by zeros, while the other items go on.  A token that is neither (an id outside the
layout, the begin token, a code of another level) raises ``ValueError`` naming its step,
item and level, and the decoder is left as it was before that call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from codec.streaming import Preroll
from codec.tokens.layout import as_int64, check_delays
from codec.tokens.vocab import TokenLayout

if TYPE_CHECKING:
    from codec.api import Codec


@dataclass(frozen=True)
class StepFlush:
    """What :meth:`StepDecoder.flush` returns.

    Attributes:
        wav: ``[B, C, n]`` the audio still held back: with what the steps returned, every
            item's audio up to its length (the longest item's ``frames * hop_length`` in all).
        frame_lengths: ``[B]`` int64 frames of each item.
    """

    wav: torch.Tensor
    frame_lengths: torch.Tensor


class StepDecoder:
    """Decode generated tokens step by step (audio per step from models that stream).

    Args:
        codec: the :class:`codec.Codec` whose codes the LM generates (causal).
        layout: the LM's :class:`TokenLayout` (parallel or flattened, any ``offset``), or
            just the ``K`` per-level delays of a parallel layout with the default vocabulary
            (``TokenLayout(K, codec.codebook_size, delays=delays)``).
        batch_size: items B generated together.
        channels: channels per item C (each step then has ``B * C`` rows, item-major).
    """

    def __init__(
        self, codec: Codec, layout: TokenLayout | Sequence[int], batch_size: int = 1, channels: int = 1
    ) -> None:
        if not isinstance(layout, TokenLayout):
            k = len(layout) if isinstance(layout, (Sequence, torch.Tensor)) else 0
            delays = check_delays(layout, k)  # a clear error for a non-sequence
            if not 1 <= k <= codec.total_codebooks:
                raise ValueError(
                    f"delays must have 1..{codec.total_codebooks} entries (one per level), got {k}"
                )
            layout = TokenLayout(k, codec.codebook_size, delays=delays)
        if layout.codebook_size != codec.codebook_size:
            raise ValueError(
                f"the layout has {layout.codebook_size}-entry codebooks, the model {codec.codebook_size}"
            )
        if layout.num_codebooks > codec.total_codebooks:
            raise ValueError(
                f"the layout has {layout.num_codebooks} levels, the model 1..{codec.total_codebooks}"
            )
        self.layout = layout
        self.stream = _stream_for(codec, batch_size, channels)
        self.batch_size, self.channels = batch_size, channels
        self._rows = batch_size * channels
        self._start()

    def _start(self) -> None:
        self._window: deque[torch.Tensor] = deque(maxlen=max(self.delays) + 1)  # parallel: columns
        self._partial: list[torch.Tensor] = []  # flattened: this frame's tokens so far
        self._steps = 0
        self._frames = 0
        self._ended = torch.zeros(self.batch_size, dtype=torch.bool)
        self._lengths = torch.zeros(self.batch_size, dtype=torch.long)
        self._tails: dict[int, torch.Tensor] = {}  # item -> its held-back audio still to return
        self._preroll = Preroll(self.stream.lookahead)  # stream output before time zero

    @property
    def delays(self) -> tuple[int, ...]:
        """The layout's per-level delays (all 0 for the flattened layout)."""
        return self.layout.delays

    @property
    def num_codebooks(self) -> int:
        return self.layout.num_codebooks

    @property
    def frames(self) -> int:
        """Frames completed and decoded so far (every item, ended or not)."""
        return self._frames

    @property
    def frame_lengths(self) -> torch.Tensor:
        """``[B]`` int64 frames of each item so far (an ended item's stops at its end)."""
        return torch.where(self._ended, self._lengths, torch.full_like(self._lengths, self._frames))

    @property
    def ended(self) -> torch.Tensor:
        """``[B]`` bool: items whose end has been seen."""
        return self._ended.clone()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one generated step.

        Args: tokens: parallel layout: ``[B * C, K]`` one id per level; flattened layout:
            ``[B * C]`` (or ``[B * C, 1]``) one id per row.  Entries of a level not yet
            started (step ``< delays[k]``) and of ended items are ignored, whatever they hold.
        Returns: ``[B, C, n]`` the audio made final by this step (``n`` is 0 until the first
            frame completes, then about ``hop_length`` per frame).
        """
        if self.layout.flat:
            return self._step_flat(tokens)
        column = as_int64(tokens, 2, "tokens")
        if tuple(column.shape) != (self._rows, self.num_codebooks):
            raise ValueError(
                f"tokens must have shape [{self._rows}, {self.num_codebooks}] (B * C rows, one per level), "
                f"got {tuple(column.shape)}"
            )
        window = [*self._window, column][-(max(self.delays) + 1) :]
        if len(window) < max(self.delays) + 1:
            self._commit_column(column)
            return self._empty()
        # Frame f's level k arrived delays[k] steps after the oldest column in the window.
        frame = torch.stack([window[d][:, k] for k, d in enumerate(self.delays)], dim=1)
        levels = torch.arange(self.num_codebooks, device=frame.device)[None, :]
        codes, stops = self._read(
            frame, levels, lambda row, k: self._steps - max(self.delays) + self.delays[k]
        )
        self._commit_column(column)
        return self._decode_frame(codes, stops)

    def _commit_column(self, column: torch.Tensor) -> None:
        self._window.append(column)
        self._steps += 1

    def _step_flat(self, tokens: torch.Tensor) -> torch.Tensor:
        if isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] == 1:
            tokens = tokens[:, 0]
        token = as_int64(tokens, 1, "tokens")
        if token.shape[0] != self._rows:
            raise ValueError(
                f"tokens must have shape [{self._rows}] (B * C rows, one token each), "
                f"got {tuple(token.shape)}"
            )
        level = len(self._partial)
        codes, stops = self._read(token[:, None], level, lambda row, k: self._steps)
        self._steps += 1
        for item in stops.nonzero().flatten().tolist():
            self._end(item)  # mid-frame: the frame it cuts is dropped
        self._partial.append(codes[:, 0])
        if len(self._partial) < self.num_codebooks:
            return self._empty()
        frame, self._partial = torch.stack(self._partial, dim=1), []
        return self._decode_frame(frame, torch.zeros_like(stops))

    def _read(
        self, ids: torch.Tensor, levels: torch.Tensor | int, step_of
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids [rows, n]`` at ``levels`` -> (codes ``[rows, n]``, ``[B]`` items that end here).

        Raises for a live item's token that is neither a code of its level nor pad/end.
        """
        codes, is_code, is_stop = self.layout.classify(ids, levels)
        live = (~self._ended).repeat_interleave(self.channels).to(ids.device)[:, None]
        bad = (~is_code & ~is_stop & live).nonzero()
        if len(bad):
            row, col = (int(v) for v in bad[0])
            level = col if isinstance(levels, torch.Tensor) else levels
            problem = self.layout.token_problem(int(ids[row, col]), level)
            raise ValueError(
                f"step {step_of(row, level)}, item {row // self.channels} (row {row}), level {level}: "
                f"token {int(ids[row, col])} is {problem}"
            )
        stops = (is_stop & live).reshape(self.batch_size, -1).any(dim=1).cpu()
        return codes.masked_fill(~is_code, 0), stops

    def _decode_frame(self, frame: torch.Tensor, stops: torch.Tensor) -> torch.Tensor:
        for item in (stops & ~self._ended).nonzero().flatten().tolist():
            self._end(item)
        if bool(self._ended.all()):
            return self._empty()  # no item has audio in this frame; held-back tails come with the flush
        rows = self._ended.repeat_interleave(self.channels).to(frame.device)
        out = self.stream.decode(frame.masked_fill(rows[:, None], 0)[..., None])
        self._frames += 1
        return self._emit(out)

    def _end(self, item: int) -> None:
        self._ended[item] = True
        self._lengths[item] = self._frames
        self._tails[item] = self.stream.tail[item].clone()

    def _emit(self, out: torch.Tensor) -> torch.Tensor:
        """Ended items: their tail, then zeros; then the pre-roll is dropped."""
        for item in self._ended.nonzero().flatten().tolist():
            tail = self._tails.get(item)
            out[item] = 0
            if tail is not None and tail.shape[-1]:
                n = min(tail.shape[-1], out.shape[-1])
                out[item, :, :n] = tail[:, :n]
                self._tails[item] = tail[:, n:]
        return self._preroll.drop(out)

    def flush(self) -> StepFlush:
        """End of generation: the audio still held back (see :class:`StepFlush`), then a fresh start.

        Frames whose levels have not all arrived (generation stopped less than
        ``max(delays)`` steps after their first level, or mid-frame in the flattened
        layout) are dropped.
        """
        for item in (~self._ended).nonzero().flatten().tolist():
            self._end(item)
        lengths = self.frame_lengths
        size = max((t.shape[-1] for t in self._tails.values()), default=0)
        out = self._emit(self.stream.tail.new_zeros(self.batch_size, self.channels, size))
        self.stream.reset()
        self._start()
        return StepFlush(out, lengths)

    def _empty(self) -> torch.Tensor:
        return self.stream.tail.new_zeros(self.batch_size, self.channels, 0)


def _stream_for(codec: Codec, batch_size: int, channels: int) -> Any:
    """The model's stream, or for a model that cannot stream the frame collector."""
    if codec.causal:
        return codec.stream(batch_size, channels)
    from codec.backends.collect import CollectingStream

    return CollectingStream(codec, batch_size, channels)
