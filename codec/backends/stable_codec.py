"""Stable Codec (the ``stable-codec`` package): 16 kHz speech, 25 Hz, residual FSQ tokens.

``stablecodec:REF#PRESET`` loads ``StableCodec(pretrained_model=REF)`` (a hub id, e.g.
``stabilityai/stable-codec-speech-16k``) or, for a folder, ``StableCodec(model_config_path=
FOLDER/model_config.json, ckpt_path=FOLDER/model.ckpt or model.safetensors)``, then sets one of
its post-hoc residual FSQ bottlenecks: ``1x46656_400bps``, ``2x15625_700bps`` (the default) or
``4x729_1000bps``; the stages are the codebooks (all of them: the package decodes every stage,
so there is no lower bitrate by leading codebooks), each of ``levels ** 6`` entries.

The package pins ``torch==2.4`` and ``torchaudio==2.4`` and depends on ``stable-audio-tools``
(with pinned ``wandb``, ``gradio``, ``pypesq``, ...), so it usually needs an environment of its
own; where it cannot be imported, loading says so in one line.  Its README also states a hard
requirement for FlashAttention (sliding-window attention): no CPU inference.
"""

from __future__ import annotations

from typing import Any

import torch

from codec.backends import BackendError
from codec.backends.base import WrappedBackend
from codec.backends.hub import first_line, local_folder, model_name

PRESETS = {"1x46656_400bps": (1, 46656), "2x15625_700bps": (2, 15625), "4x729_1000bps": (4, 729)}
DEFAULT_PRESET = "2x15625_700bps"


def _import() -> Any:
    try:
        from stable_codec import StableCodec
    except Exception as err:  # ImportError, or whatever its own imports raise
        raise BackendError(
            f"stablecodec models need the stable-codec package, which cannot be imported here "
            f"({first_line(err)}); it pins torch==2.4 and torchaudio==2.4 and needs stable-audio-tools: "
            "pip install stable-codec in an environment of its own"
        ) from None
    return StableCodec


def load(kind: str, ref: str) -> StableCodecBackend:
    ref, _, preset = ref.partition("#")
    preset = preset or DEFAULT_PRESET
    if preset not in PRESETS:
        raise BackendError(f"{kind}:{ref}#{preset}: unknown bottleneck (known: {', '.join(PRESETS)})")
    stable_codec = _import()
    folder = local_folder(kind, ref)
    try:
        if folder is None:
            model = stable_codec(pretrained_model=ref)
        else:
            found = [p for p in (folder / "model.safetensors", folder / "model.ckpt") if p.is_file()]
            ckpt = found[0] if found else None
            model = stable_codec(model_config_path=str(folder / "model_config.json"), ckpt_path=str(ckpt))
        model.set_posthoc_bottleneck(preset)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise BackendError(f"{kind}:{ref}: cannot load the model ({first_line(err)})") from None
    return StableCodecBackend(model, model_name(kind, ref), ref, preset)


class StableCodecBackend(WrappedBackend):
    """A Stable Codec model with a post-hoc residual FSQ bottleneck behind :class:`Backend`."""

    kind = "stablecodec"

    def __init__(self, model: Any, name: str, source: str, preset: str) -> None:
        self.stages, self.size = PRESETS[preset]
        extra = {"preset": torch.tensor(list(preset.encode()))}  # the bottleneck changes the codes
        super().__init__(model, f"{name}#{preset}"[:128], source, extra)

    def torch_module(self) -> torch.nn.Module:
        return self.model.model

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.model.model.downsampling_ratio)

    @property
    def codebook_size(self) -> int:
        return self.size

    @property
    def total_codebooks(self) -> int:
        return self.stages

    def codebook_counts(self) -> tuple[int, ...]:
        return (self.stages,)

    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        _, tokens = self.model.encode(rows[:, None], posthoc_bottleneck=True)
        return torch.stack([t.reshape(t.shape[0], -1) for t in tokens], dim=1).long()  # [N, stages, F]

    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        tokens = [codes[:, i, :, None] for i in range(codes.shape[1])]
        return self.model.decode(tokens, posthoc_bottleneck=True)[:, 0]
