"""Step-by-step decoding for models that cannot stream: keep the frames, decode them whole.

:class:`codec.tokens.StepDecoder` turns an LM's generated columns into frames and decodes each
through a stream.  A model that cannot stream (a non-causal one: DAC, EnCodec, SNAC, ...)
decodes through a :class:`CollectingStream` instead: it has the stream's shape, keeps every
frame and returns no audio per step; its :attr:`CollectingStream.tail` is the audio of all the
frames so far, decoded in one call (once per number of frames).  The step decoder hands an
item that tail when the item ends and at the flush, so each item's audio arrives whole, equal
to decoding its frames offline (every row then has the same number of frames, so no item's
audio depends on another's padding).
"""

from __future__ import annotations

from typing import Any

import torch

from codec.checks import check_codes
from codec.tokens.codes import Codes


class CollectingStream:
    """The stream-shaped frame collector of a model that cannot stream.

    Args:
        backend: the model (a :class:`codec.backends.Backend`).
        batch_size: items B.
        channels: channels per item C (rows ``B * C``, item-major).
    """

    lookahead = 0

    def __init__(self, backend: Any, batch_size: int, channels: int) -> None:
        self.backend, self.batch_size, self.channels = backend, batch_size, channels
        self._rows = batch_size * channels
        self.reset()

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Forget every frame (a mask is not needed: items only ever restart together here)."""
        self._frames: list[torch.Tensor] = []
        self._audio: tuple[int, torch.Tensor] | None = None

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Keep ``codes [B * C, K, f]``; returns no audio (``[B, C, 0]``)."""
        check_codes(codes, self._rows, self.backend.total_codebooks, self.backend.codebook_size)
        self._frames.append(codes.to(torch.long))
        return torch.zeros(self.batch_size, self.channels, 0, device=codes.device)

    @property
    def tail(self) -> torch.Tensor:
        """``[B, C, frames * hop_length]``: the audio of every frame kept so far."""
        frames = sum(c.shape[-1] for c in self._frames)
        if frames == 0:
            return torch.zeros(self.batch_size, self.channels, 0)
        if self._audio is None or self._audio[0] != frames:
            self._audio = (frames, self._decode(torch.cat(self._frames, dim=-1)))
        return self._audio[1]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        b = self.backend
        lengths = torch.full((self.batch_size,), codes.shape[-1] * b.hop_length, dtype=torch.long)
        whole = Codes(
            codes=codes, lengths=lengths, sample_rate=b.sample_rate, hop_length=b.hop_length,
            codebook_size=b.codebook_size, channels=self.channels, model=b.name, fingerprint=b.fingerprint,
        )  # fmt: skip
        return b.decode(whole)
