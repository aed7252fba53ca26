"""EnCodec, DAC and Mimi through ``transformers``: their published weights as backends.

``encodec:REF``, ``dac:REF`` and ``mimi:REF`` load ``EncodecModel`` / ``DacModel`` /
``MimiModel`` with ``from_pretrained(REF)`` (a hub id, or a folder written by
``save_pretrained``; see :mod:`codec.backends.hub` for how an unreachable hub is reported).
Each codes mono audio at its own rate, one row per channel, frames of ``hop_length`` samples:

- EnCodec (``facebook/encodec_24khz``): 75 Hz, 32 codebooks of 1024 (1.5-24 kbps); any number
  of leading codebooks is a valid encoding (its residual VQ), not only the bandwidths it was
  trained at.  Models that code in normalised chunks (the 48 kHz stereo one) are refused:
  their per-chunk scales have no place in :class:`Codes`.
- DAC (``descript/dac_16khz``): 50 Hz, 12 codebooks of 1024 (6 kbps).  Its encoder drops a
  partial last frame, so items are zero-padded to whole frames first (as its processor does).
- Mimi (``kyutai/mimi``): 24 kHz, 12.5 Hz, up to 32 codebooks of 2048 (the first one
  semantic); causal, so it streams (:mod:`codec.backends.mimi_stream`).

None of them sees lengths: a padded batch is coded as it is, so layers that look past an
item's end (EnCodec's and DAC's non-causal convolutions, EnCodec's LSTM) let the padding
change the codes of its last frames.  ``batch_invariant`` is False for all three; the README
states what was measured.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch

from codec.backends import BackendError
from codec.backends.base import WrappedBackend
from codec.backends.hub import fetch, model_name, need

_CLASSES = {"encodec": "EncodecModel", "dac": "DacModel", "mimi": "MimiModel"}


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Only errors from ``transformers`` while a model loads: no notes, no progress bars."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load(kind: str, ref: str) -> TransformersBackend:
    """The ``transformers`` model ``kind`` from a hub id or folder ``ref``."""
    need("transformers", kind)
    import transformers

    cls = getattr(transformers, _CLASSES[kind])
    with quiet_transformers():
        model = fetch(kind, ref, cls.from_pretrained)
    backend = {"encodec": EncodecBackend, "dac": DacBackend, "mimi": MimiBackend}[kind]
    return backend(model, model_name(kind, ref), ref)


class TransformersBackend(WrappedBackend):
    """A ``transformers`` codec model behind :class:`Backend`.

    Args:
        model: the loaded model (put in eval mode).
        name: the name recorded in codes (see :func:`model_name`).
    """

    def __init__(self, model: Any, name: str, source: str = "") -> None:
        import transformers

        super().__init__(model, name, source)
        self.versions = f"transformers={transformers.__version__}"

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    @property
    def codebook_size(self) -> int:
        return int(self.model.config.codebook_size)


class EncodecBackend(TransformersBackend):
    kind = "encodec"

    def __init__(self, model: Any, name: str, source: str = "") -> None:
        cfg = model.config
        if cfg.normalize or cfg.chunk_length_s or int(cfg.audio_channels) != 1:
            raise BackendError(
                f"{name}: this EnCodec codes {cfg.audio_channels} channel(s) in normalised chunks with a "
                "scale per chunk, which codes here do not carry; use a mono model without chunking "
                "(facebook/encodec_24khz)"
            )
        super().__init__(model, name, source)
        self._bandwidth = max(cfg.target_bandwidths)

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.model.config.upsampling_ratios))

    @property
    def total_codebooks(self) -> int:
        return int(self.model.quantizer.get_num_quantizers_for_bandwidth(self._bandwidth))

    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        # Every level at the top bandwidth, then the leading ones: a residual VQ's first k levels
        # do not depend on the later ones.
        out = self.model.encode(rows[:, None], bandwidth=self._bandwidth, return_dict=True)
        return out.audio_codes[0][:, :num_codebooks]

    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes[None], [None], return_dict=True).audio_values[:, 0]


class DacBackend(TransformersBackend):
    kind = "dac"

    @property
    def hop_length(self) -> int:
        return int(self.model.config.hop_length)

    @property
    def total_codebooks(self) -> int:
        return int(self.model.config.n_codebooks)

    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        return self.model.encode(rows[:, None], n_quantizers=num_codebooks, return_dict=True).audio_codes

    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        wav = self.model.decode(audio_codes=codes, return_dict=True).audio_values
        return wav if wav.dim() == 2 else wav[:, 0]


class MimiBackend(TransformersBackend):
    kind = "mimi"

    @property
    def hop_length(self) -> int:
        cfg = self.model.config
        return round(cfg.sampling_rate / cfg.frame_rate)

    @property
    def total_codebooks(self) -> int:
        return int(self.model.config.num_quantizers)

    @property
    def causal(self) -> bool:
        return bool(self.model.config.use_causal_conv)

    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        return self.model.encode(rows[:, None], num_quantizers=num_codebooks, return_dict=True).audio_codes

    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values[:, 0]

    def stream(self, batch_size: int = 1, channels: int = 1, num_codebooks: int | None = None) -> Any:
        """A stateful stream (see :class:`codec.backends.mimi_stream.MimiStream`)."""
        if not self.causal:
            return super().stream(batch_size, channels, num_codebooks)
        from codec.backends.mimi_stream import MimiStream

        return MimiStream(self, batch_size, channels, self._check_num_codebooks(num_codebooks))
