"""One interface over every codec the benchmark compares, and the codec SPEC grammar.

A SPEC names a codec and its bitrates (kbps)::

    ours                       the bundled default model at --bitrates
    ours:speech_16k@1.5,3,6    a bundled model (or ours:path/to/model_dir) at 1.5, 3 and 6 kbps
    lyra@3.2,6,9.2             Lyra v2 (TFLite files shipped in codec/bench/lyra_v2/)
    opus@6,9,12                Opus (libopus through libsndfile), target bitrates
    encodec:facebook/encodec_24khz@1.5,6     another codec's weights, any model spec of
    dac:descript/dac_16khz@6   mimi:kyutai/mimi@1.1   :mod:`codec.backends` (snac, speechtokenizer, ...)

Each (codec, bitrate) pair is one :class:`Adapter`: ``encode`` mono audio at the adapter's own
rate into a payload (codes or bytes), ``decode`` it back; ``bits`` of a payload is what it
costs to send, so the achieved bitrate is measured, not assumed.  Ours and every other codec's
weights go through the same :class:`BackendAdapter` over :class:`codec.backends.Backend`, the
tokenizer API itself (no second copy of any model's glue).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from codec.errors import InputError


class SpecError(InputError):
    """A codec SPEC that cannot be parsed or built (bad name, bitrate or model)."""


@dataclass(frozen=True)
class Spec:
    """A parsed SPEC: ``kind`` (ours, lyra, opus, encodec, dac, mimi), ``model`` and ``kbps``."""

    kind: str
    model: str | None
    kbps: tuple[float, ...]


@dataclass(frozen=True)
class Payload:
    """What an encoder produced.

    Attributes:
        data: adapter-specific (codes tensor, encoded bytes).
        bits: the payload's size in bits (codes: frames x levels x bits per code; Opus: the file).
        num_samples: input samples, so the decoder can trim to the input length.
        codes: integer codes ``[K, F]`` when the codec has codebooks, else ``None``.
    """

    data: Any
    bits: float
    num_samples: int
    codes: np.ndarray | None = None


class Adapter(ABC):
    """One codec at one setting.

    Attributes:
        kind: codec family (``ours``, ``lyra``, ``opus``, ...).
        label: display name of the codec, without the bitrate.
        sample_rate: rate the codec takes and returns.
        kbps: nominal bitrate of this setting.
        codebook_size: entries per codebook (``None`` when there are no codes).
        streaming: whether :meth:`stream_frames` is available.
    """

    kind: str = ""
    label: str = ""
    sample_rate: int = 16000
    kbps: float = 0.0
    codebook_size: int | None = None
    streaming: bool = False
    batched: bool = False
    spec: str = ""  # the one-setting SPEC that rebuilds this adapter (set by build_adapters)

    @property
    def key(self) -> str:
        """Cache identity: changes whenever the output could change (weights, settings, versions)."""
        return hashlib.sha256(f"{self.kind}|{self.identity()}|{self.kbps}".encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return f"{self.label} @ {self.kbps:g} kbps"

    @abstractmethod
    def identity(self) -> str:
        """A string that pins the model and library version (hashed into :attr:`key`)."""

    @abstractmethod
    def encode(self, wav: np.ndarray) -> Payload:
        """Encode mono float32 ``wav [T]`` at :attr:`sample_rate`."""

    @abstractmethod
    def decode(self, payload: Payload) -> np.ndarray:
        """Decode to mono float32 ``[T]`` (the input's length) at :attr:`sample_rate`."""

    def round_trip(self, wav: np.ndarray) -> tuple[np.ndarray, Payload]:
        """``decode(encode(wav))`` and the payload."""
        payload = self.encode(wav)
        return fit_length(self.decode(payload), wav.shape[-1]), payload

    def parameters(self) -> int | None:
        """Trainable parameter count, where known."""
        return None

    def torch_module(self) -> torch.nn.Module | None:
        """The torch model behind the adapter (moved between devices by the speed bench)."""
        return None

    def encode_batch(self, wav: torch.Tensor) -> Any:
        """Encode ``[B, T]`` in one call (only where :attr:`batched`)."""
        raise NotImplementedError

    def decode_batch(self, payload: Any) -> torch.Tensor:
        raise NotImplementedError

    def stream_frames(self, wav: np.ndarray) -> tuple[float, list[float], list[float]]:
        """Stream ``wav`` frame by frame: frame seconds, per-frame encode and decode seconds."""
        raise NotImplementedError


def fit_length(wav: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``wav [T]`` to ``n`` samples."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if wav.shape[0] >= n:
        return wav[:n]
    return np.pad(wav, (0, n - wav.shape[0]))


def levels_for(kbps: float, bps_per_level: float, counts: Sequence[int], text: str) -> int:
    """The codebook count (one of ``counts``) that gives ``kbps`` exactly, or a :class:`SpecError`
    listing the valid bitrates."""
    k = round(kbps * 1000 / bps_per_level)
    if k not in counts or abs(k * bps_per_level - kbps * 1000) > 1e-6 * bps_per_level + 0.5:
        valid = ", ".join(f"{j * bps_per_level / 1000:g}" for j in counts)
        raise SpecError(f"{text}: {kbps:g} kbps is not a number of codebooks; valid kbps: {valid}")
    return k


class BackendAdapter(Adapter):
    """A :class:`codec.backends.Backend` (ours, or another codec's weights) at ``num_codebooks``.

    Args:
        backend: the loaded model.
        num_codebooks: leading codebooks kept (one of ``backend.codebook_counts()``).
    """

    batched = True

    def __init__(self, backend: Any, num_codebooks: int) -> None:
        self.backend, self.k = backend, num_codebooks
        self.kind = backend.kind
        self.label = f"{backend.kind} ({getattr(backend, 'source', '') or backend.name})"
        self.sample_rate = backend.sample_rate
        self.frame_rate = backend.frame_rate
        self.kbps = backend.bitrate(num_codebooks) / 1000
        self.codebook_size = backend.codebook_size
        self.streaming = bool(backend.causal)
        self._bits = float(np.ceil(np.log2(backend.codebook_size)))

    def identity(self) -> str:
        versions = getattr(self.backend, "versions", "")
        return f"{self.backend.fingerprint[:16]}|k={self.k}" + (f"|{versions}" if versions else "")

    def parameters(self) -> int:
        return self.backend.num_parameters()

    def torch_module(self) -> torch.nn.Module:
        return self.backend.torch_module()

    @torch.inference_mode()
    def encode(self, wav: np.ndarray) -> Payload:
        codes = self.backend.encode(torch.from_numpy(wav), self.sample_rate, num_codebooks=self.k)
        c = codes.codes[0].cpu()
        return Payload(codes, c.numel() * self._bits, wav.shape[-1], c.numpy())

    @torch.inference_mode()
    def decode(self, payload: Payload) -> np.ndarray:
        return self.backend.decode(payload.data)[0, 0].cpu().numpy()

    @torch.inference_mode()
    def encode_batch(self, wav: torch.Tensor) -> Any:
        return self.backend.encode(wav[:, None], self.sample_rate, num_codebooks=self.k)

    @torch.inference_mode()
    def decode_batch(self, payload: Any) -> torch.Tensor:
        return self.backend.decode(payload)[:, 0]  # [B, T]

    @torch.inference_mode()
    def stream_frames(self, wav: np.ndarray) -> tuple[float, list[float], list[float]]:
        import time

        hop = self.backend.hop_length
        stream = self.backend.stream(num_codebooks=self.k)
        x = torch.from_numpy(wav)[None, None]
        enc, dec = [], []
        for start in range(0, x.shape[-1] - hop + 1, hop):
            t0 = time.perf_counter()
            codes = stream.encode(x[..., start : start + hop])
            t1 = time.perf_counter()
            stream.decode(codes)
            t2 = time.perf_counter()
            enc.append(t1 - t0)
            dec.append(t2 - t1)
        return hop / self.sample_rate, enc, dec
