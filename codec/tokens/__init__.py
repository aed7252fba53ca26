"""Tokens: the :class:`Codes` container and what a language model needs around codes.

* :mod:`codec.tokens.codes`: :class:`Codes`, codes with the lengths and metadata to decode them.
* :mod:`codec.tokens.layout`: plain layout functions with inverses (flatten with per-level
  offsets, per-level delay patterns, masking of padded frames).
* :mod:`codec.tokens.vocab`: :class:`TokenLayout`, the vocabulary with pad/begin/end tokens
  outside the code ranges (and an optional offset, to share one vocabulary with text), for
  the flattened and the parallel (delayed) layouts, and the policy for reading tokens back.
* :mod:`codec.tokens.step`: :class:`StepDecoder`, generated tokens (either layout) in, audio
  out as soon as each frame is complete.

The names are imported from their modules on first use (:mod:`codec.lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codec.lazy import exports

if TYPE_CHECKING:
    from codec.tokens.codes import Codes
    from codec.tokens.layout import (
        acoustic_delays,
        apply_delay_pattern,
        flatten_codes,
        mask_frames,
        staircase_delays,
        undo_delay_pattern,
        unflatten_tokens,
    )
    from codec.tokens.step import StepDecoder, StepFlush
    from codec.tokens.vocab import FramedCodes, TokenLayout

__all__ = [
    "Codes",
    "FramedCodes",
    "StepDecoder",
    "StepFlush",
    "TokenLayout",
    "acoustic_delays",
    "apply_delay_pattern",
    "flatten_codes",
    "mask_frames",
    "staircase_delays",
    "undo_delay_pattern",
    "unflatten_tokens",
]
_MODULE = {
    "Codes": "codes",
    "StepDecoder": "step",
    "StepFlush": "step",
    "FramedCodes": "vocab",
    "TokenLayout": "vocab",
}
__getattr__, __dir__ = exports(__name__, {n: f"{__name__}.{_MODULE.get(n, 'layout')}" for n in __all__})
