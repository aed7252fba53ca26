"""The semantic distillation term of the generator loss, as the training module uses it.

:class:`SemanticObjective` holds the learned projection (its only parameters, saved in
training checkpoints, never exported) and the frozen teacher (outside the module tree, so
its weights are neither trained nor checkpointed).  Per batch it takes the first codebook's
quantized output from the quantizer (``QuantizerOutput.first_level``) and the teacher's
features on the codec's frame grid: precomputed ones from the batch when the data carries
them (``features_dir``), else the teacher's on the training crops.

Building it does not touch the global random state (the projection is initialised from its
own seeded generator), so ``weight: 0`` trains exactly as the option off does, only logging.
"""

from __future__ import annotations

import torch
from torch import nn

from codec.config import CodecConfig
from codec.quantize import QuantizerOutput
from codec.train.semantic.align import SemanticHead
from codec.train.semantic.config import SemanticConfig
from codec.train.semantic.teacher import FeatureFn, Teacher, load_teacher

INIT_SEED = 0x5E3A


class SemanticObjective(nn.Module):
    """First codebook -> teacher features, for one model config.

    Args:
        model: the codec's config (latent dimension, sample and frame rates).
        cfg: the ``train.semantic`` section (``teacher`` set).
        teacher: a ready teacher or object, replacing ``cfg.teacher`` (from Python code).
    """

    def __init__(
        self, model: CodecConfig, cfg: SemanticConfig, teacher: Teacher | FeatureFn | nn.Module | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.sample_rate = model.sample_rate
        self.frame_rate = model.sample_rate / model.hop_length
        with torch.random.fork_rng(devices=[]):
            if not isinstance(teacher, Teacher):
                spec = teacher if teacher is not None else cfg.teacher
                if spec is None:
                    raise ValueError("semantic distillation needs a teacher")
                teacher = load_teacher(spec, cfg.layer, cfg.sample_rate, cfg.frame_rate)
            # A plain attribute (Teacher is no nn.Module): not a submodule, not in state_dict.
            self.teacher: Teacher = teacher
            torch.manual_seed(INIT_SEED)
            shape = (cfg.head, cfg.head_kernel, cfg.head_width)
            self.head = SemanticHead(model.latent_dim, teacher.dim, cfg.loss, cfg.normalize, *shape)

    def _apply(self, fn, *args, **kwargs):  # type: ignore[override]
        # Follow the module to its device (Lightning moves the module, not the teacher).
        out = super()._apply(fn, *args, **kwargs)
        self.teacher.to(self.head.proj.weight.device)
        return out

    def targets(self, wav: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Teacher features ``[B, num_frames, D]`` for training crops ``wav [B, T]`` (no gradient)."""
        return self.teacher.frame_features(wav, self.sample_rate, self.frame_rate, num_frames)

    def forward(
        self, quantizer: QuantizerOutput, wav: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The distillation loss of one batch.

        Args:
            quantizer: the generator's quantizer output for ``wav`` (rows ``B * F``).
            wav: ``[B, T]`` the crops (used only when ``target`` is ``None``).
            target: ``[B, F, D]`` precomputed teacher features on the codec's grid, or ``None``.
        Returns: the scalar loss.
        """
        first = quantizer.first_level
        if first is None:
            raise RuntimeError("the quantizer output has no first level (frozen quantizer?)")
        batch = wav.shape[0]
        first = first.reshape(batch, first.shape[0] // batch, -1)
        if target is None:
            target = self.targets(wav, first.shape[1])
        return self.head(first, target)
