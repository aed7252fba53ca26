"""The ``train.semantic`` section: which teacher the first codebook learns from, and how.

Standard library only, so that reading a preset does not load torch models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from codec.config import ConfigError


@dataclass(frozen=True)
class SemanticConfig:
    """Semantic distillation of the first codebook; off while ``teacher`` is null.

    Attributes:
        teacher: a torchaudio pipeline bundle name (``WAVLM_BASE``, ``HUBERT_BASE``,
            ``WAV2VEC2_BASE``, ...; its weights are downloaded on first use), a TorchScript
            file, or an import path ``pkg.module:attr`` naming an ``nn.Module``, a factory of
            one, or a callable ``wav [B, T] -> features [B, F, D]``.
        layer: the teacher layer to learn (1-based transformer layer for wav2vec 2.0-family
            models, or an index into a list of per-layer outputs); null: the last one.
        weight: loss weight (0: computed and logged, not trained on).
        loss: ``cosine`` (1 - cosine similarity per frame) or ``l1`` (mean absolute error).
        normalize: standardise the teacher's features per dimension before the loss (so the
            loss follows how frames differ, not the features' common offset).
        features_dir: a folder of precomputed teacher features (one file per audio file,
            computed before training where missing and reused by every later run); null:
            the teacher runs on every training batch.
        sample_rate: the teacher's input rate; null: the bundle's, the model's
            ``sample_rate`` attribute, else 16000.
        frame_rate: the teacher's frames per second; null: from its convolution strides
            (wav2vec 2.0 family), else from the number of frames it returns.
        head: the training-only projection from the first codebook to the teacher:
            ``conv`` (``head_kernel`` neighbouring frames mixed into ``head_width`` channels,
            a GELU, then linear; the default, measured ahead of ``linear`` in
            benchmarks/RESULTS.md) or ``linear`` (each frame on its own).
        head_kernel: frames the ``conv`` head reads (odd).
        head_width: channels of the ``conv`` head.
    """

    teacher: str | None = None
    layer: int | None = None
    weight: float = 1.0
    loss: Literal["cosine", "l1"] = "cosine"
    normalize: bool = True
    features_dir: str | None = None
    sample_rate: int | None = None
    frame_rate: float | None = None
    head: Literal["linear", "conv"] = "conv"
    head_kernel: int = 5
    head_width: int = 256

    @property
    def enabled(self) -> bool:
        return self.teacher is not None

    def __post_init__(self) -> None:
        if self.teacher is not None and not self.teacher.strip():
            raise ConfigError("train.semantic.teacher: empty (null turns the option off)")
        if self.layer is not None and self.layer < 1:
            raise ConfigError(f"train.semantic.layer must be >= 1 (1-based), got {self.layer}")
        if self.weight < 0:
            raise ConfigError(f"train.semantic.weight must be >= 0, got {self.weight}")
        if self.sample_rate is not None and self.sample_rate <= 0:
            raise ConfigError(f"train.semantic.sample_rate must be positive, got {self.sample_rate}")
        if self.frame_rate is not None and self.frame_rate <= 0:
            raise ConfigError(f"train.semantic.frame_rate must be positive, got {self.frame_rate}")
        if self.head_kernel < 1 or self.head_kernel % 2 == 0:
            raise ConfigError(f"train.semantic.head_kernel must be odd and positive, got {self.head_kernel}")
        if self.head_width < 1:
            raise ConfigError(f"train.semantic.head_width must be positive, got {self.head_width}")
