"""The distillation LightningModule and the run behind ``codec distill``.

:class:`DistillationModule` is the ordinary training module (same optimisers, schedules,
discriminators, EMA, validation and checkpoints) with a frozen teacher beside the generator
and the distillation terms of :mod:`codec.train.distill` added to the generator's loss.  A run
directory therefore looks like any training run, and ``codec export`` turns its checkpoints
into a model directory (the teacher and the latent projection are not part of the export).
The teacher's weights are not stored in the checkpoints: a resumed run reloads the teacher
named on its command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from codec.checkpoint import load_checkpoint, model_fingerprint
from codec.config import CodecConfig, ConfigError, from_dict
from codec.model import ModelOutput
from codec.train.config import Preset, TrainConfig
from codec.train.distill import (
    DistillConfig,
    DistillPreset,
    LatentProjection,
    TeacherTargets,
    check_compatible,
    distill_losses,
    init_from_teacher,
    student_forward,
    teacher_targets,
)
from codec.train.export import check_resume
from codec.train.module import CodecTrainingModule
from codec.train.runner import RunOptions, build_trainer, flushing_denormals
from codec.train.teacher_cache import DistillDataModule, TeacherCache, cache_identity
from codec.train.warmstart import resolve_model_dir

_TEACHER = "teacher."


class DistillationModule(CodecTrainingModule):
    """Student generator + frozen teacher.

    Args:
        model, train: the student's config and recipe (as for :class:`CodecTrainingModule`).
        distill: the ``train.distill`` section.
        teacher: a model directory or bundled model name.
        cache: where the teacher's outputs are kept (None: computed every step).
    """

    def __init__(
        self,
        model: dict[str, Any] | CodecConfig,
        train: dict[str, Any] | TrainConfig,
        distill: dict[str, Any] | DistillConfig,
        teacher: str,
        cache: TeacherCache | None = None,
    ) -> None:
        super().__init__(model, train)
        cfg = (
            distill
            if isinstance(distill, DistillConfig)
            else from_dict(DistillConfig, distill, "train.distill")
        )
        loaded = load_checkpoint(resolve_model_dir(teacher))
        check_compatible(self.model_cfg, loaded.model.cfg, cfg)
        self.save_hyperparameters(
            {
                "model": self.model_cfg.to_dict(),
                "train": self.cfg.to_dict(),
                "distill": cfg.to_dict(),
                "teacher": str(teacher),
                "teacher_fingerprint": loaded.fingerprint,
            }
        )
        self.distill_cfg, self.cache = cfg, cache
        self.teacher = loaded.model.requires_grad_(False).eval()
        s, t = self.model_cfg.quantizer, loaded.model.cfg.quantizer
        self.shared_codebooks = s.codebook_size == t.codebook_size and s.kind == t.kind
        self.latent_projection = LatentProjection(self.model_cfg.latent_dim, loaded.model.cfg.latent_dim)
        self.initialised: list[str] = []
        if cfg.init_from_teacher and not self.cfg.init_from:
            self.initialised = init_from_teacher(self.generator, self.teacher)
            if self.ema is not None:
                self.ema.load_state_dict(self.generator.state_dict())

    def configure_optimizers(self) -> Any:
        optimizers, schedulers = super().configure_optimizers()
        extra = list(self.latent_projection.parameters())
        if extra:
            o = self.cfg.optimizer
            optimizers[0].add_param_group({"params": extra, "lr": o.lr, "weight_decay": o.weight_decay})
        return optimizers, schedulers

    def teacher_outputs(self, keys: torch.Tensor, wav: torch.Tensor) -> TeacherTargets:
        """The teacher's targets for crops ``keys [B]`` / ``wav [B, T]`` (from the cache if any)."""
        if self.cache is None:
            return teacher_targets(self.teacher, wav)
        return self.cache.lookup([int(k) for k in keys], wav, lambda w: teacher_targets(self.teacher, w))

    # Distillation differs from training only in its batch (keys beside the crops), its forward
    # pass (the student's latent is a target too) and its losses: the step is the parent's.
    def forward_batch(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, ModelOutput, tuple[torch.Tensor, TeacherTargets]]:
        """Args: batch ``(keys [B], crops [B, T])``; the context is (student latent, teacher targets)."""
        keys, real = batch
        targets = self.teacher_outputs(keys, real)
        latent, out = student_forward(self.generator, real, self.cfg.freeze)
        return real, out, (latent, targets)

    def extra_losses(
        self,
        total: torch.Tensor,
        out: ModelOutput,
        real: torch.Tensor,
        context: tuple[torch.Tensor, TeacherTargets],
        logs: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """``total`` plus the distillation terms of :func:`codec.train.distill.distill_losses`."""
        latent, targets = context
        terms = distill_losses(
            latent,
            out,
            targets,
            self.generator.quantizer,
            self.latent_projection,
            self.mel_loss,
            self.distill_cfg,
            self.shared_codebooks,
        )
        for name, (weight, value) in terms.items():
            logs[f"distill/{name}"] = value.detach()
            if weight > 0:
                total = total + weight * value
        if self.cache is not None:
            logs["distill/cache_hits"] = torch.tensor(float(self.cache.hits))
        return total

    # The teacher is reloaded from its directory, never saved with the student's checkpoints.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        for name in [k for k in state if k.startswith(_TEACHER)]:
            del state[name]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        recorded = checkpoint.get("hyper_parameters", {}).get("teacher_fingerprint")
        if recorded is not None and recorded != self.hparams["teacher_fingerprint"]:
            raise ConfigError(
                "the checkpoint was distilled from another teacher (weights fingerprint differs)"
            )
        for name, tensor in self.teacher.state_dict().items():
            checkpoint["state_dict"][_TEACHER + name] = tensor


def distill(preset: DistillPreset, teacher: str, options: RunOptions) -> DistillationModule:
    """Distil (or resume distilling) ``teacher`` into the student of ``preset``; returns the module.

    Raises:
        codec.config.ConfigError: an incompatible teacher, a cache made for something else.
        codec.checkpoint.CheckpointError: the teacher is not a model directory.
        codec.train.data.DataError: no usable training or validation audio.
        codec.train.export.ExportError: ``options.resume`` is not a checkpoint of this student.
    """
    with flushing_denormals():  # see codec.train.runner.flushing_denormals
        return _distill(preset, teacher, options)


def _distill(preset: DistillPreset, teacher: str, options: RunOptions) -> DistillationModule:
    L.seed_everything(preset.train.seed, workers=True, verbose=False)
    cfg = preset.distill
    data = DistillDataModule(
        preset.train.data,
        preset.model.sample_rate,
        preset.model.hop_length,
        preset.train.seed,
        cfg.pool_items,
    )
    cache = None
    if cfg.pool_items > 0:
        fingerprint = model_fingerprint(resolve_model_dir(teacher))
        folder = Path(cfg.cache_dir) if cfg.cache_dir else options.run_dir / "teacher_cache"
        cache = TeacherCache(folder, cache_identity(fingerprint, data, data.train_files))
    module = DistillationModule(preset.model, preset.train, cfg, teacher, cache)
    trainer = build_trainer(Preset(preset.model, preset.train), options)
    if options.resume:
        check_resume(options.resume, module, preset.model)
    trainer.fit(module, datamodule=data, ckpt_path=str(options.resume) if options.resume else None)
    return module
