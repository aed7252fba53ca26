"""CodecTrainingModule: a thin LightningModule around :class:`codec.model.CodecModel`.

Manual optimisation of the generator (the codec) and the discriminators.  Per batch:

1. generator forward (quantizer dropout inside the quantizer picks the bitrate per item);
2. once adversarial training has started, one discriminator step on real vs. detached fake;
3. one generator step on the weighted sum of the losses (weight 0: computed and logged only);
4. LR schedules step, the EMA copy of the generator is updated.

The step count (``trainer.global_step``) counts generator updates only: the discriminator is
stepped through the strategy directly so that Lightning does not count it as a step.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from codec.config import CodecConfig, from_dict
from codec.model import CodecModel, ModelOutput, build_model
from codec.train.config import TrainConfig
from codec.train.discriminators import Discriminators
from codec.train.losses import (
    AbsolutePhaseLoss,
    CompressedComplexSTFTLoss,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    PhaseDerivativeLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codec.train.semantic.objective import SemanticObjective
from codec.train.validation import ValidationMixin
from codec.train.warmstart import freeze, generator_forward, warm_start


def lr_factor(
    step: int, warmup: int, max_steps: int, min_ratio: float, schedule: str = "cosine", decay_steps: int = 0
) -> float:
    """Linear warmup to 1, then a cosine decay to ``min_ratio`` at ``max_steps``: over the whole
    rest of the run (``schedule="cosine"``) or over its last ``decay_steps`` (``"wsd"``)."""
    if step < warmup:
        return (step + 1) / warmup
    start = warmup if schedule == "cosine" else max(max_steps - decay_steps, warmup)
    if step < start:
        return 1.0
    progress = min((step - start) / max(max_steps - start, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class CodecTrainingModule(ValidationMixin, L.LightningModule):
    """Generator, discriminators and losses for one run.

    Args:
        model: the codec's config (``model:`` section).
        train: the training config (``train:`` section).
        teacher: the semantic distillation teacher as a Python object, replacing the config's
            ``train.semantic.teacher`` name (see :mod:`codec.train.semantic.teacher`).
    The configs are stored in the checkpoint as plain dicts (``hyper_parameters``), so
    ``codec export`` can rebuild the model without the preset file.
    """

    def __init__(
        self, model: dict[str, Any] | CodecConfig, train: dict[str, Any] | TrainConfig, teacher: Any = None
    ) -> None:
        super().__init__()
        model_cfg = model if isinstance(model, CodecConfig) else from_dict(CodecConfig, model, "model")
        train_cfg = train if isinstance(train, TrainConfig) else from_dict(TrainConfig, train, "train")
        self.save_hyperparameters({"model": model_cfg.to_dict(), "train": train_cfg.to_dict()})
        self.model_cfg, self.cfg = model_cfg, train_cfg
        self.automatic_optimization = False
        self.generator: CodecModel = build_model(model_cfg)
        if train_cfg.init_from:
            warm_start(self.generator, train_cfg.init_from)
        freeze(self.generator, train_cfg.freeze)
        d = train_cfg.discriminator
        self.discriminators = Discriminators(
            d.periods, d.period_channels, d.stft_sizes, d.stft_channels, d.bands
        )
        loss = train_cfg.loss
        self.mel_loss = MultiScaleMelLoss(model_cfg.sample_rate, loss.mel_windows, loss.mel_bins)
        self.stft_loss = MultiResolutionSTFTLoss(loss.stft_sizes)
        self.phase_loss = PhaseDerivativeLoss(loss.phase_fft)
        self.absolute_phase_loss = AbsolutePhaseLoss(loss.phase_fft)
        self.complex_loss = CompressedComplexSTFTLoss(loss.complex_sizes, loss.complex_exponent)
        self.ema: CodecModel | None = None
        if train_cfg.ema_decay > 0:
            self.ema = copy.deepcopy(self.generator).requires_grad_(False)
        q = model_cfg.quantizer
        self.register_buffer("code_counts", torch.zeros(q.total_codebooks, q.codebook_size), persistent=False)
        # Semantic distillation: a training-only projection (never exported) and a frozen teacher.
        self.semantic: SemanticObjective | None = None
        if train_cfg.semantic.enabled:
            self.semantic = SemanticObjective(model_cfg, train_cfg.semantic, teacher)

    # ----------------------------------------------------------------- optimisers
    def configure_optimizers(self) -> Any:
        o = self.cfg.optimizer
        betas = (o.betas[0], o.betas[1])
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        if self.semantic is not None:
            trainable += list(self.semantic.parameters())
        opt_g = torch.optim.AdamW(trainable, o.lr, betas, weight_decay=o.weight_decay)
        opt_d = torch.optim.AdamW(
            self.discriminators.parameters(), o.disc_lr, betas, weight_decay=o.weight_decay
        )
        max_steps, warmup, ratio = self.cfg.max_steps, o.warmup_steps, o.min_lr_ratio

        # A closure, not an object: LambdaLR then keeps it out of the checkpoint, so a resumed
        # run follows the schedule of its current config (e.g. a larger --max-steps).
        def schedule(step: int) -> float:
            return lr_factor(step, warmup, max_steps, ratio, o.schedule, o.decay_steps)

        sch_g = torch.optim.lr_scheduler.LambdaLR(opt_g, schedule)
        # The discriminator's scheduler counts its own steps (it starts at start_step).
        disc_steps = max(max_steps - (self.cfg.discriminator.start_step or 0), 1)

        def disc_schedule(step: int) -> float:
            return lr_factor(step, warmup, disc_steps, ratio, o.schedule, o.decay_steps)

        sch_d = torch.optim.lr_scheduler.LambdaLR(opt_d, disc_schedule)
        return [opt_g, opt_d], [sch_g, sch_d]

    # ----------------------------------------------------------------- training
    def adversarial_active(self) -> bool:
        start = self.cfg.discriminator.start_step
        return start is not None and self.global_step >= start

    def _generator_update(
        self, opt_g: Any, sch_g: Any, total: torch.Tensor, out: ModelOutput, logs: dict[str, torch.Tensor]
    ) -> None:
        """Backward ``total``, clip and step the generator (and its EMA); log the total and lr."""
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        self.clip_gradients(opt_g, self.cfg.optimizer.grad_clip, "norm")
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        sch_g.step()
        self._update_ema()
        self._count_codes(out)
        logs["loss/total"] = total.detach()
        logs["lr"] = torch.tensor(sch_g.get_last_lr()[0])

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """One discriminator step (once adversarial training has started), then one generator
        step; subclasses change the batch's forward pass and add losses through
        :meth:`forward_batch` and :meth:`extra_losses`, never this skeleton."""
        opt_g, opt_d = self.optimizers()
        sch_g, sch_d = self.lr_schedulers()
        real, out, context = self.forward_batch(batch)
        logs: dict[str, torch.Tensor] = {}
        adversarial = self.adversarial_active()
        if adversarial:
            self._discriminator_step(opt_d, real, out.wav.detach(), logs)
            sch_d.step()
        # Only the generator's parameters get gradients in its step (not the discriminators').
        self.toggle_optimizer(opt_g)
        total = self._generator_losses(out, real, adversarial, logs)
        total = self.extra_losses(total, out, real, context, logs)
        self._generator_update(opt_g, sch_g, total, out, logs)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True, prog_bar=False)
        if "loss/mel" in logs:
            self.log("mel", logs["loss/mel"], prog_bar=True, logger=False)
        if self.global_step % self.cfg.logging.every_n_steps == 0:
            self._log_code_usage("train")

    def forward_batch(
        self, batch: torch.Tensor | list[torch.Tensor]
    ) -> tuple[torch.Tensor, ModelOutput, Any]:
        """The generator's forward pass on a batch: ``(real crops [B, T], its output, context
        for extra_losses)``.

        Args: batch ``[B, T]`` waveform crops (T a multiple of the hop), or ``[crops, teacher
        features [B, F, D]]`` with precomputed semantic distillation targets (the context).
        """
        real, target = (batch[0], batch[1]) if isinstance(batch, list | tuple) else (batch, None)
        return real, generator_forward(self.generator, real, self.cfg.freeze), target

    def extra_losses(
        self,
        total: torch.Tensor,
        out: ModelOutput,
        real: torch.Tensor,
        context: Any,
        logs: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """``total`` plus the losses beyond the codec's own (here the semantic one); each is
        logged, and added only when its weight is positive."""
        if self.semantic is not None:
            semantic = self.semantic(out.quantizer, real, context)
            logs["loss/semantic"] = semantic.detach()
            if self.cfg.semantic.weight > 0:
                total = total + self.cfg.semantic.weight * semantic
        return total

    def _discriminator_step(
        self, opt_d: Any, real: torch.Tensor, fake: torch.Tensor, logs: dict[str, torch.Tensor]
    ) -> None:
        """One update of the discriminators on real vs. (detached) generated audio ``[B, T]``."""
        real_d = self.discriminators(real)
        fake_d = self.discriminators(fake)
        loss = discriminator_loss(real_d.logits, fake_d.logits, self.cfg.discriminator.kind)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.clip_gradients(opt_d, self.cfg.optimizer.disc_grad_clip, "norm")
        # Through the strategy (precision plugin, scaler), not LightningOptimizer.step(): the
        # latter would count as a training step and halve the meaning of max_steps.
        self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None, model=self)
        logs["loss/discriminator"] = loss.detach()

    def _generator_losses(
        self,
        out: ModelOutput,
        real: torch.Tensor,
        adversarial: bool,
        logs: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Weighted sum of the generator losses; weight 0 ones are only logged.

        A logged-only spectral loss is computed on logging steps alone (no gradient): on a CPU
        each one costs about as much as the generator's forward pass.
        """
        w = self.cfg.loss
        fake = out.wav
        log_step = self.global_step % self.cfg.logging.every_n_steps == 0
        spectral = {
            "mel": (w.mel, self.mel_loss),
            "stft": (w.stft, self.stft_loss),
            "waveform": (w.waveform, lambda a, b: F.l1_loss(a.float(), b.float())),
            "phase": (w.phase, self.phase_loss),
            "phase_absolute": (w.phase_absolute, self.absolute_phase_loss),
            "complex": (w.complex, self.complex_loss),
        }
        terms: dict[str, tuple[float, torch.Tensor]] = {}
        for name, (weight, fn) in spectral.items():
            if weight > 0:
                terms[name] = (weight, fn(fake, real))
            elif log_step:
                with torch.no_grad():
                    terms[name] = (weight, fn(fake.detach(), real))
        terms["commitment"] = (w.commitment, out.quantizer.commitment_loss.float())
        terms["codebook"] = (w.codebook, out.quantizer.codebook_loss.float())
        if adversarial:
            # Real activations from the just-updated discriminators, as targets (no gradient).
            with torch.no_grad():
                real_d = self.discriminators(real)
            fake_d = self.discriminators(fake)
            kind = self.cfg.discriminator.kind
            terms["adversarial"] = (w.adversarial, generator_adversarial_loss(fake_d.logits, kind))
            terms["feature"] = (w.feature, feature_matching_loss(real_d.features, fake_d.features))
        total = fake.new_zeros((), dtype=torch.float32)
        for name, (weight, value) in terms.items():
            logs[f"loss/{name}"] = value.detach()
            if weight > 0:
                total = total + weight * value
        return total

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        # Bias correction for the first steps: the average starts as a copy, not as zeros.
        step = self.global_step
        decay = min(self.cfg.ema_decay, (1 + step) / (10 + step))
        for p_ema, p in zip(self.ema.parameters(), self.generator.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1 - decay)
        for b_ema, b in zip(self.ema.buffers(), self.generator.buffers(), strict=True):
            b_ema.copy_(b)

    def inference_model(self) -> CodecModel:
        """The weights validation and export use: the EMA copy when enabled."""
        return self.ema if self.ema is not None else self.generator

    # ----------------------------------------------------------------- resume
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Quantizer dropout and dead-code replacement draw from the global generator; saving it
        # makes a resumed run continue exactly as the uninterrupted one would have.
        checkpoint["rng_state"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["rng_state"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("rng_state", {})
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    # ----------------------------------------------------------------- code usage
    @torch.no_grad()
    def _count_codes(self, out: ModelOutput) -> None:
        codes = out.quantizer.codes  # [M, K]
        size = self.code_counts.shape[1]
        offsets = torch.arange(codes.shape[1], device=codes.device) * size
        flat = (codes + offsets).flatten()
        self.code_counts.view(-1).add_(torch.bincount(flat, minlength=self.code_counts.numel()).float())

    def _log_code_usage(self, prefix: str) -> None:
        from codec.metrics import entropy_bits

        counts = self.code_counts
        if counts.sum() == 0:
            return
        entropies = [entropy_bits(c) for c in counts]
        metrics = {f"{prefix}/codebook_entropy/{k}": h for k, h in enumerate(entropies)}
        metrics[f"{prefix}/codebook_entropy_min"] = min(entropies)
        metrics[f"{prefix}/codebook_perplexity_mean"] = sum(2**h for h in entropies) / len(entropies)
        self.log_dict(metrics, on_step=prefix == "train", on_epoch=prefix != "train", rank_zero_only=True)
        counts.zero_()
