"""Neural peers from Hugging Face ``transformers``: EnCodec, DAC and Mimi.

``encodec:NAME@KBPS``, ``dac:NAME@KBPS`` and ``mimi:NAME@KBPS`` load
``EncodecModel`` / ``DacModel`` / ``MimiModel`` with ``from_pretrained(NAME)``: a hub name on a
machine with a hub connection, or a local folder written by ``save_pretrained``.  Each kbps
becomes a number of codebooks: EnCodec's own ``target_bandwidths``; DAC and Mimi ``frame rate
x codebooks x log2(codebook size)``.  The model gets mono audio at its own rate (a stereo
EnCodec gets the mono signal on both channels; its output channels are averaged).
"""

from __future__ import annotations

import importlib.metadata
import math
from typing import Any

import numpy as np
import torch

from codec.bench.adapters import Adapter, Payload, Spec, SpecError, fit_length, levels_for, weights_digest

DEFAULT_MODELS = {"encodec": "facebook/encodec_24khz", "dac": "descript/dac_16khz", "mimi": "kyutai/mimi"}
_CLASSES = {"encodec": "EncodecModel", "dac": "DacModel", "mimi": "MimiModel"}


class PeerAdapter(Adapter):
    """One ``transformers`` codec model at one number of codebooks.

    Args:
        kind: ``encodec``, ``dac`` or ``mimi``.
        model: the loaded model (``eval()`` is called).
        name: what it was loaded from (shown in the report).
        num_codebooks: codebooks kept.
        identity: the weights' digest and library version, for the cache.
    """

    batched = True

    def __init__(self, kind: str, model: Any, name: str, num_codebooks: int, identity: str) -> None:
        cfg = model.config
        self.kind, self.model, self.k, self._identity = kind, model.eval(), num_codebooks, identity
        self.label = f"{kind} ({name})"
        self.sample_rate = int(cfg.sampling_rate)
        self.codebook_size = int(cfg.codebook_size)
        self.frame_rate = frame_rate(kind, cfg)
        self.kbps = self.frame_rate * num_codebooks * math.log2(self.codebook_size) / 1000
        self.channels = int(getattr(cfg, "audio_channels", 1))

    def identity(self) -> str:
        return f"{self._identity}|k={self.k}"

    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def torch_module(self) -> torch.nn.Module:
        return self.model

    @torch.inference_mode()
    def encode_batch(self, wav: torch.Tensor) -> Any:
        x = wav[:, None].expand(-1, self.channels, -1)
        if self.kind == "encodec":
            out = self.model.encode(x, bandwidth=self.kbps, return_dict=True)
            return (out.audio_codes, out.audio_scales, wav.shape[-1])
        if self.kind == "dac":  # DAC drops a partial last frame: pad to whole frames, as its processor does
            hop = int(self.model.config.hop_length)
            x = torch.nn.functional.pad(x, (0, -x.shape[-1] % hop))
            return (self.model.encode(x, n_quantizers=self.k).audio_codes[:, : self.k], None, wav.shape[-1])
        return (self.model.encode(x, num_quantizers=self.k).audio_codes, None, wav.shape[-1])

    @torch.inference_mode()
    def decode_batch(self, payload: Any) -> torch.Tensor:
        codes, scales, n = payload
        if self.kind == "encodec":
            out = self.model.decode(codes, scales).audio_values
        else:
            out = self.model.decode(audio_codes=codes).audio_values
        out = out if out.dim() == 3 else out[:, None]
        return out.mean(1)[..., :n]  # [B, T]

    def encode(self, wav: np.ndarray) -> Payload:
        payload = self.encode_batch(torch.from_numpy(wav)[None])
        codes = payload[0]
        c = codes.reshape(-1, codes.shape[-2], codes.shape[-1])  # EnCodec: [chunks*B, K, F]
        c = c.permute(1, 0, 2).reshape(c.shape[1], -1)
        return Payload(
            payload, c.numel() * math.ceil(math.log2(self.codebook_size)), wav.shape[-1], c.numpy()
        )

    def decode(self, payload: Payload) -> np.ndarray:
        return fit_length(self.decode_batch(payload.data)[0].numpy(), payload.num_samples)


def frame_rate(kind: str, cfg: Any) -> float:
    """Frames per second of a peer's codes."""
    if kind == "dac":
        return cfg.sampling_rate / cfg.hop_length
    if kind == "mimi":
        return float(cfg.frame_rate)
    return cfg.sampling_rate / math.prod(cfg.upsampling_ratios)


def max_codebooks(kind: str, cfg: Any) -> int:
    if kind == "dac":
        return int(cfg.n_codebooks)
    if kind == "mimi":
        return int(cfg.num_quantizers)
    return round(max(cfg.target_bandwidths) * 1000 / (frame_rate(kind, cfg) * math.log2(cfg.codebook_size)))


def load_peer(kind: str, name: str) -> Any:
    """``<Model>.from_pretrained(name)``; a clear :class:`SpecError` when it cannot be had."""
    try:
        import transformers
    except ImportError:
        raise SpecError(f"{kind} needs the transformers package: pip install 'codec[bench]'") from None
    cls = getattr(transformers, _CLASSES[kind])
    try:
        return cls.from_pretrained(name)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpecError(f"{kind}:{name}: cannot load the model ({first[:200]})") from None


def adapters_for(kind: str, model: Any, name: str, kbps: tuple[float, ...]) -> list[Adapter]:
    """One :class:`PeerAdapter` per bitrate for an already loaded model."""
    cfg = model.config
    version = importlib.metadata.version("transformers")
    identity = f"{kind}|{name}|{weights_digest(model)}|transformers={version}"
    per_level = frame_rate(kind, cfg) * math.log2(cfg.codebook_size)
    text = f"{kind}:{name}"
    out: list[Adapter] = []
    for r in kbps:
        if kind == "encodec" and not any(abs(r - b) < 1e-6 for b in cfg.target_bandwidths):
            raise SpecError(
                f"{text}: {r:g} kbps is not one of {', '.join(f'{b:g}' for b in cfg.target_bandwidths)}"
            )
        k = levels_for(r, per_level, max_codebooks(kind, cfg), text)
        out.append(PeerAdapter(kind, model, name, k, identity))
    return out


def build_peer(spec: Spec) -> list[Adapter]:
    name = spec.model or DEFAULT_MODELS[spec.kind]
    return adapters_for(spec.kind, load_peer(spec.kind, name), name, spec.kbps)
