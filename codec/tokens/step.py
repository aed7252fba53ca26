"""Streaming detokenizer: an LM's generated columns in, audio out as soon as frames complete.

An LM over the delayed parallel layout (:class:`codec.tokens.TokenLayout`) emits one column
``[B, K]`` per step; at step ``t`` level ``k`` holds frame ``t - delays[k]``, so frame ``f``
is complete at step ``f + max(delays)``.  :class:`StepDecoder` keeps the last
``max(delays) + 1`` columns, assembles each frame when its last level arrives and decodes it
through a :class:`codec.streaming.Stream`.  Its output is aligned with time zero (the
decoder's pre-roll is dropped), so everything it returns, flush included, is exactly
``codec.decode`` of the undelayed codes (to float rounding, as streaming is).

A model that cannot stream (DAC, EnCodec, ...: see :mod:`codec.backends`) decodes through
:class:`codec.backends.collect.CollectingStream`: the steps return no audio, and each item's
audio comes whole when it ends (at the latest at the flush), equal to decoding its frames.

Items end on their own: a frame in which any level holds something other than a code (the
layout's end or pad token, say) ends its item there.  From then on that item's audio is the
decoder's held-back tail (what a flush would give, so it equals decoding the item at its
length) followed by zeros, while the other items go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from codec.tokens.layout import check_delays, check_int_tensor

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
    """Decode generated columns of the delayed layout step by step (audio per step from causal models).

    Args:
        codec: the :class:`codec.Codec` whose codes the LM generates (causal).
        delays: ``K`` non-negative per-level delays, as in the LM's layout.
        batch_size: items B generated together.
        channels: channels per item C (columns then have ``B * C`` rows, item-major).
    """

    def __init__(self, codec: Codec, delays: Sequence[int], batch_size: int = 1, channels: int = 1) -> None:
        k = len(delays) if isinstance(delays, (Sequence, torch.Tensor)) else 0
        self.delays = check_delays(delays, k)  # a clear error for a non-sequence
        if not 1 <= k <= codec.total_codebooks:
            raise ValueError(f"delays must have 1..{codec.total_codebooks} entries (one per level), got {k}")
        self.stream = _stream_for(codec, batch_size, channels)
        self.codebook_size = codec.codebook_size
        self.batch_size, self.channels = batch_size, channels
        self._rows = batch_size * channels
        self._start()

    def _start(self) -> None:
        self._window: deque[torch.Tensor] = deque(maxlen=max(self.delays) + 1)
        self._frames = 0
        self._ended = torch.zeros(self.batch_size, dtype=torch.bool)
        self._lengths = torch.zeros(self.batch_size, dtype=torch.long)
        self._tails: dict[int, torch.Tensor] = {}  # item -> its held-back audio still to return
        self._preroll = self.stream.lookahead  # stream output before time zero, still to drop

    @property
    def num_codebooks(self) -> int:
        return len(self.delays)

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

    def step(self, column: torch.Tensor) -> torch.Tensor:
        """Feed one generated column.

        Args: column ``[B * C, K]`` integers; entries of a level not yet started (step
            ``< delays[k]``) and of ended items are ignored, whatever they hold.
        Returns: ``[B, C, n]`` the audio made final by this step (``n`` is 0 until the first
            frame completes, then about ``hop_length`` per step).
        """
        check_int_tensor(column, 2, "column")
        if tuple(column.shape) != (self._rows, self.num_codebooks):
            raise ValueError(
                f"column must have shape [{self._rows}, {self.num_codebooks}] (B * C rows, one per level), "
                f"got {tuple(column.shape)}"
            )
        self._window.append(column.to(torch.long))
        if len(self._window) < self._window.maxlen:
            return self._empty()
        # Frame f's level k arrived delays[k] steps after the oldest column in the window.
        frame = torch.stack([self._window[d][:, k] for k, d in enumerate(self.delays)], dim=1)
        return self._decode_frame(frame[..., None])

    def _decode_frame(self, frame: torch.Tensor) -> torch.Tensor:
        is_code = ((frame >= 0) & (frame < self.codebook_size)).reshape(self.batch_size, -1).all(dim=1).cpu()
        for item in (~is_code & ~self._ended).nonzero().flatten().tolist():
            self._end(item)
        if bool(self._ended.all()):
            return self._empty()  # no item has audio in this frame; held-back tails come with the flush
        rows = self._ended.repeat_interleave(self.channels).to(frame.device)
        out = self.stream.decode(frame.masked_fill(rows[:, None, None], 0))
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
        drop = min(self._preroll, out.shape[-1])
        self._preroll -= drop
        return out[..., drop:]

    def flush(self) -> StepFlush:
        """End of generation: the audio still held back (see :class:`StepFlush`), then a fresh start.

        Frames whose levels have not all arrived (generation stopped less than
        ``max(delays)`` steps after their first level) are dropped.
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
