"""Codec-to-codec distillation: a smaller student codec learns from a trained teacher codec.

On top of the usual reconstruction losses against the real audio (the ``train.loss`` weights),
the student is taught by the teacher at three levels:

* **latent** (encoder-level): MSE between the student's encoder latent and the teacher's, through
  a learned linear projection when their widths differ (training-only: not exported);
* **codes** (code-level): cross-entropy of each quantizer level's similarity scores, used as
  logits, against the teacher's code at that level.  The residual of level ``k`` is formed with
  the teacher's codes of the levels before it (teacher forcing), so every level is taught the
  teacher's choice given the teacher's context.  Only meaningful when the student's codebooks
  are the teacher's (shared, or copied from it at initialisation and then trained);
* **output** (output-level): multi-scale mel L1 between the student's output and the teacher's.

The student can be initialised from the teacher where shapes allow (:func:`init_from_teacher`):
trunk blocks are taken at a stride (every other block for half the depth), every other tensor
of the same name and shape is copied (front end, projections, codebooks, heads).

The ``distill:`` settings live in the preset's ``train:`` section (``train.distill``), so one
file describes the student, its recipe and how it is taught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from codec.config import CodecConfig, ConfigError, from_dict, load_preset
from codec.model import CodecModel, ModelOutput
from codec.quantize import ResidualVQ
from codec.train.config import TrainConfig
from codec.train.warmstart import forward_with_latent


@dataclass(frozen=True)
class DistillConfig:
    """The ``train.distill`` section: loss weights (0: logged only) and the teacher cache.

    Attributes:
        latent: weight of the student-latent vs teacher-latent MSE.
        codes: weight of the code-level cross-entropy (needs the teacher's codebook size and kind).
        code_temperature: logits = cosine similarity / temperature (factorized codes) or
            (dot product - half squared norm) / temperature (euclidean codes).
        teacher_mel: weight of the multi-scale mel L1 between student and teacher outputs.
        init_from_teacher: copy the teacher's tensors into the student where shapes allow.
        pool_items: training crops repeat every this many items (0: every crop is new).  The
            teacher's outputs are cached on disk only with a pool, where they are reused.
        cache_dir: where the cache goes (default: ``RUN_DIR/teacher_cache``).
    """

    latent: float = 1.0
    codes: float = 1.0
    code_temperature: float = 0.1
    teacher_mel: float = 15.0
    init_from_teacher: bool = True
    pool_items: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if min(self.latent, self.codes, self.teacher_mel) < 0:
            raise ConfigError("train.distill: loss weights must be >= 0")
        if self.code_temperature <= 0:
            raise ConfigError("train.distill.code_temperature must be positive")
        if self.pool_items < 0:
            raise ConfigError("train.distill.pool_items must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DistillPreset:
    """A student preset: the student model, its recipe and the distillation settings."""

    model: CodecConfig
    train: TrainConfig
    distill: DistillConfig


def load_distill_preset(path: str | Path) -> DistillPreset:
    """Read a student preset (``train.distill`` optional); errors are :class:`ConfigError`."""
    data = load_preset(path)
    train = dict(data["train"] or {})
    distill = train.pop("distill", None) or {}
    model = from_dict(CodecConfig, data["model"], "model")
    return DistillPreset(
        model, from_dict(TrainConfig, train, "train"), from_dict(DistillConfig, distill, "train.distill")
    )


def check_compatible(student: CodecConfig, teacher: CodecConfig, cfg: DistillConfig) -> None:
    """Raise :class:`ConfigError` when the student cannot learn from this teacher."""
    for name in ("sample_rate", "hop_length"):
        if getattr(student, name) != getattr(teacher, name):
            raise ConfigError(
                f"the student's {name} ({getattr(student, name)}) differs from the teacher's "
                f"({getattr(teacher, name)}): distillation needs the same frames"
            )
    s, t = student.quantizer, teacher.quantizer
    if cfg.codes > 0 and (s.codebook_size != t.codebook_size or s.kind != t.kind):
        raise ConfigError(
            "train.distill.codes needs the teacher's codebooks (same quantizer kind and codebook_size; "
            f"student {s.kind}/{s.codebook_size}, teacher {t.kind}/{t.codebook_size}): set it to 0"
        )


# ----------------------------------------------------------------------------- initialisation
def block_map(student_blocks: int, teacher_blocks: int) -> list[int]:
    """Teacher block for each student block: a stride of ``teacher // student`` from block 0.

    Half the depth takes every other block (3 of 6: 0, 2, 4); as deep or deeper: the same index
    (student blocks beyond the teacher's depth map to none and keep their initialisation).
    """
    stride = max(teacher_blocks // student_blocks, 1)
    return [i * stride for i in range(student_blocks)]


_BLOCK = re.compile(r"^(encoder|decoder)\.trunk\.blocks\.(\d+)\.(.+)$")


def init_from_teacher(student: CodecModel, teacher: CodecModel) -> list[str]:
    """Copy the teacher's tensors into the student where names (after block mapping) and shapes match.

    Returns: the names of the student's tensors that were copied.
    """
    maps = {
        part: block_map(len(getattr(student, part).trunk.blocks), len(getattr(teacher, part).trunk.blocks))
        for part in ("encoder", "decoder")
    }
    source = teacher.state_dict()
    copied = []
    with torch.no_grad():
        for name, tensor in student.state_dict().items():
            match = _BLOCK.match(name)
            src = name
            if match:
                part, index, rest = match.group(1), int(match.group(2)), match.group(3)
                src = f"{part}.trunk.blocks.{maps[part][index]}.{rest}"
            if src in source and source[src].shape == tensor.shape:
                tensor.copy_(source[src])
                copied.append(name)
    return copied


# ----------------------------------------------------------------------------- forward and losses
@dataclass
class TeacherTargets:
    """What the teacher gives for a batch of crops.

    Attributes:
        latent: ``[N, F, D_teacher]`` encoder latent (float32 holding float16 values).
        codes: ``[N, K, F]`` int64, all of the teacher's levels.
        wav: ``[N, T]`` its reconstruction at full depth (float32 holding float16 values).
    Values are rounded through float16, the cache's storage type, so that targets read from the
    cache equal targets computed on the fly.
    """

    latent: torch.Tensor
    codes: torch.Tensor
    wav: torch.Tensor


@torch.no_grad()
def teacher_targets(teacher: CodecModel, wav: torch.Tensor) -> TeacherTargets:
    """Run the teacher (float32, inference path) on ``wav [N, T]``."""
    teacher.eval()
    with torch.autocast(wav.device.type, enabled=False):
        latent = teacher.encoder(wav.float())
        n, f, d = latent.shape
        codes = teacher.quantizer.encode(latent.reshape(n * f, d))
        out = teacher.synthesize(teacher.quantizer.decode(codes).reshape(n, f, d))
    codes = codes.reshape(n, f, -1).transpose(1, 2).contiguous()
    return TeacherTargets(latent.half().float(), codes, out.half().float())


def student_forward(
    model: CodecModel, wav: torch.Tensor, frozen: tuple[str, ...]
) -> tuple[torch.Tensor, ModelOutput]:
    """Training forward that also returns the encoder latent ``[N, F, D]`` (frozen parts in eval mode)."""
    return forward_with_latent(model, wav, frozen)


def code_cross_entropy(
    quantizer: ResidualVQ, latent: torch.Tensor, teacher_codes: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over levels of the cross-entropy of the student's code scores vs the teacher's codes.

    Args:
        quantizer: the student's quantizer (its codebooks have the teacher's size).
        latent: ``[M, D]`` the student's encoder latent rows.
        teacher_codes: ``[M, K]`` the teacher's codes for the same rows.
        temperature: the logits' divisor.
    Returns: a scalar (float32).
    """
    levels = min(quantizer.total_codebooks, teacher_codes.shape[1])
    residual = latent.float()
    total = residual.new_zeros(())
    with torch.autocast(latent.device.type, enabled=False):
        for k in range(levels):
            level = quantizer.levels[k]
            search, bias, out_codebook = level.search_tensors()
            z = level.project_in(residual)
            if level.kind == "factorized":
                z = F.normalize(z, dim=-1)
            logits = (z @ search.T - bias) / temperature
            target = teacher_codes[:, k]
            total = total + F.cross_entropy(logits, target)
            residual = residual - out_codebook[target]
    return total / levels


class LatentProjection(nn.Module):
    """Student latent -> teacher latent width (identity when equal); training-only."""

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim) if student_dim != teacher_dim else nn.Identity()

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Args: latent ``[N, F, D_student]``. Returns ``[N, F, D_teacher]``."""
        return self.proj(latent)


def distill_losses(
    latent: torch.Tensor,
    out: ModelOutput,
    targets: TeacherTargets,
    quantizer: ResidualVQ,
    projection: LatentProjection,
    mel_loss: nn.Module,
    cfg: DistillConfig,
    shared_codebooks: bool,
) -> dict[str, tuple[float, torch.Tensor]]:
    """The distillation terms as ``name -> (weight, value)``; a 0-weight term is computed without gradient.

    Args:
        latent: ``[N, F, D_s]`` the student's encoder latent.
        out: the student's training forward output.
        targets: the teacher's outputs for the same crops.
        quantizer, projection, mel_loss: the student's quantizer, the latent projection, the mel loss.
        shared_codebooks: the student's codebooks have the teacher's size and kind (else no
            code-level term, not even logged).
    """
    n, f, d = latent.shape
    teacher_rows = targets.codes.transpose(1, 2).reshape(n * f, -1)

    def latent_term() -> torch.Tensor:
        return F.mse_loss(projection(latent.float()), targets.latent)

    def code_term() -> torch.Tensor:
        return code_cross_entropy(quantizer, latent.reshape(n * f, d), teacher_rows, cfg.code_temperature)

    terms: dict[str, tuple[float, torch.Tensor]] = {}
    for name, weight, fn in (
        ("latent", cfg.latent, latent_term),
        ("codes", cfg.codes, code_term),
        ("teacher_mel", cfg.teacher_mel, lambda: mel_loss(out.wav, targets.wav)),
    ):
        if name == "codes" and not shared_codebooks:
            continue
        if weight > 0:
            terms[name] = (weight, fn())
        else:
            with torch.no_grad():
                terms[name] = (weight, fn())
    with torch.no_grad():
        k = min(out.quantizer.codes.shape[1], teacher_rows.shape[1])
        agree = (out.quantizer.codes[:, :k] == teacher_rows[:, :k]).float().mean(0)
    terms["code_agreement_first"] = (0.0, agree[0])
    terms["code_agreement_all"] = (0.0, agree.mean())
    return terms
