"""SNAC (the ``snac`` package): multi-scale codes laid out as ``[B, K, F]`` frames.

SNAC quantizes at several time scales: level ``i`` has one code every ``vq_strides[i]``
latent steps (``hubertsiuzdak/snac_24khz``: strides 4, 2, 1 over a 512-sample hop, so 12, 23
and 47 codes per second).  A frame here is the coarsest step, ``hop * vq_strides[0]`` samples,
and holds every code of that span, level by level in time order: for strides 4, 2, 1 that is
``1 + 2 + 4 = 7`` codebooks per frame (rows ``0``; ``1-2``; ``3-6``), the frame layout
speech LMs built on SNAC use.  All levels share one codebook size (4096).

Only whole levels make a valid lower bitrate, so the leading codebook counts are 1, 3 and 7
(:meth:`SnacBackend.codebook_counts`).  SNAC's decoder adds noise (its noise blocks): decoding
runs item by item at its own length with the noise seeded, so the same codes always give the
same audio, whatever else is in the batch.  The encoder pads its input to whole attention
windows; models with a local attention window get their decoder input padded the same way,
with zero latents.
"""

from __future__ import annotations

from typing import Any

import torch

from codec.backends import BackendError
from codec.backends.base import WrappedBackend
from codec.backends.hub import fetch, model_name, need


def load(kind: str, ref: str) -> SnacBackend:
    """A SNAC model from a hub id or a folder holding ``config.json`` and ``pytorch_model.bin``."""
    need("snac", kind)
    import importlib.metadata

    from snac import SNAC

    model = fetch(kind, ref, SNAC.from_pretrained)
    backend = SnacBackend(model, model_name(kind, ref), ref)
    backend.versions = f"snac={importlib.metadata.version('snac')}"
    return backend


class SnacBackend(WrappedBackend):
    """A SNAC model behind :class:`Backend` (see the module docstring for the frame layout)."""

    kind = "snac"

    def __init__(self, model: Any, name: str, source: str = "") -> None:
        strides = [int(s) for s in model.vq_strides]
        if any(strides[0] % s for s in strides):
            raise BackendError(f"{name}: vq_strides {strides} do not divide the coarsest one")
        super().__init__(model, name, source)
        self.per_frame = [strides[0] // s for s in strides]  # codes of each level in one frame

    @property
    def sample_rate(self) -> int:
        return int(self.model.sampling_rate)

    @property
    def hop_length(self) -> int:
        return int(self.model.hop_length) * int(self.model.vq_strides[0])

    @property
    def codebook_size(self) -> int:
        return int(self.model.codebook_size)

    @property
    def total_codebooks(self) -> int:
        return sum(self.per_frame)

    def codebook_counts(self) -> tuple[int, ...]:
        """Whole levels only: 1, 1 + 2, 1 + 2 + 4, ... codebooks."""
        return tuple(sum(self.per_frame[: i + 1]) for i in range(len(self.per_frame)))

    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        n_frames = rows.shape[-1] // self.hop_length
        levels = self.model.encode(rows[:, None])  # level i: [N, steps_i], padded past the input
        parts = [
            codes[:, : n_frames * n].reshape(codes.shape[0], n_frames, n).transpose(1, 2)
            for codes, n in zip(levels, self.per_frame, strict=True)
        ]
        return torch.cat(parts, dim=1)[:, :num_codebooks]

    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        # Row by row at its own length: the noise blocks draw noise for the whole batch, so a
        # row's noise (and, past its end, its padding) would otherwise depend on the others.
        out = codes.new_zeros(codes.shape[0], codes.shape[-1] * self.hop_length, dtype=torch.float32)
        for i, n in enumerate(frames.tolist()):
            wav = self._decode_one(codes[i : i + 1, :, :n])
            out[i, : wav.shape[-1]] = wav[0]
        return out

    def _decode_one(self, codes: torch.Tensor) -> torch.Tensor:
        n, _, f = codes.shape
        latent, row = 0.0, 0
        for q, per in zip(self.model.quantizer.quantizers, self.per_frame, strict=False):
            if row + per > codes.shape[1]:
                break  # fewer levels: a lower bitrate
            level = codes[:, row : row + per].transpose(1, 2).reshape(n, f * per)
            latent = latent + q.out_proj(q.decode_code(level)).repeat_interleave(q.stride, dim=-1)
            row += per
        steps = latent.shape[-1]
        latent = torch.nn.functional.pad(latent, (0, -steps % (self.model.attn_window_size or 1)))
        with torch.random.fork_rng(devices=[codes.device] if codes.device.type == "cuda" else []):
            torch.manual_seed(0)  # the noise blocks: the same codes give the same audio
            wav = self.model.decoder(latent)
        return wav[:, 0, : steps * int(self.model.hop_length)]
