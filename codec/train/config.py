"""Training configuration: the ``train:`` section of a preset as nested frozen dataclasses.

Parsed with :func:`codec.config.from_dict`, so an unknown or mistyped key is an error naming
the key.  Every field has a default; a preset only lists what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from codec.config import CodecConfig, ConfigError, from_dict, load_preset
from codec.train.semantic.config import SemanticConfig


@dataclass(frozen=True)
class DataConfig:
    """Where audio comes from and how training items are cut from it.

    ``train``/``val`` are folders or manifests (CSV with a ``path`` column, or JSONL with a
    ``path`` key); the command line's ``--data``/``--val-data`` replace them.  Without ``val``,
    ``val_fraction`` of the training files are held out.
    """

    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    val_fraction: float = 0.05
    segment_seconds: float = 1.0
    batch_size: int = 8
    num_workers: int = 2
    # Loudness normalisation of every crop to this RMS level (dBFS) +- a uniform random jitter.
    loudness_db: float = -20.0
    loudness_jitter_db: float = 6.0
    # Validation items: whole files cut to at most this long, the first ``val_items`` files.
    val_seconds: float = 6.0
    val_items: int = 16


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW for the generator and the discriminators; linear warmup, then a decay.

    ``schedule: cosine`` decays from ``lr`` to ``lr * min_lr_ratio`` over the whole run.
    ``schedule: wsd`` (warmup-stable-decay) holds ``lr`` and decays (cosine) only over the last
    ``decay_steps``: a run resumed with a larger ``max_steps`` continues at full rate.
    """

    lr: float = 5e-4
    disc_lr: float = 5e-4
    betas: tuple[float, ...] = (0.8, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 500
    # Cosine decay from lr to lr * min_lr_ratio over max_steps.
    min_lr_ratio: float = 0.05
    schedule: Literal["cosine", "wsd"] = "cosine"
    decay_steps: int = 1000
    grad_clip: float = 1.0
    disc_grad_clip: float = 10.0


@dataclass(frozen=True)
class LossConfig:
    """Loss weights; 0 means "computed and logged, not trained on" (``None`` skips nothing)."""

    mel: float = 15.0
    stft: float = 1.0
    waveform: float = 0.0
    # Instantaneous-frequency + group-delay phase loss (see losses.PhaseDerivativeLoss).
    phase: float = 0.0
    phase_fft: int = 640
    # Magnitude-weighted absolute phase loss (see losses.AbsolutePhaseLoss), same FFT size.
    phase_absolute: float = 0.0
    # MSE of power-law compressed complex spectra (see losses.CompressedComplexSTFTLoss).
    complex: float = 0.0
    complex_sizes: tuple[int, ...] = (256, 512, 1024)
    complex_exponent: float = 0.3
    adversarial: float = 1.0
    feature: float = 2.0
    commitment: float = 0.25
    codebook: float = 1.0
    # Multi-scale mel: one scale per window length (samples at the model rate).
    mel_windows: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    mel_bins: tuple[int, ...] = (10, 20, 40, 80, 80, 128)
    # Multi-resolution STFT (auraloss): FFT sizes; hop = size / 4, window = size.
    stft_sizes: tuple[int, ...] = (256, 512, 1024, 2048)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-period (waveform) and multi-resolution multi-band STFT discriminators."""

    # Adversarial and feature losses start at this generator step (0: from the start; null:
    # never, the discriminators are then neither run nor trained).
    start_step: int | None = 0
    kind: Literal["hinge", "lsgan"] = "lsgan"
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    period_channels: int = 32
    stft_sizes: tuple[int, ...] = (1024, 512, 256)
    stft_channels: int = 32
    # Band edges as fractions of the Nyquist frequency (multi-band STFT discriminator).
    bands: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class CheckpointConfig:
    every_n_steps: int = 500
    keep_last: int = 3


@dataclass(frozen=True)
class LoggingConfig:
    every_n_steps: int = 50
    val_every_n_steps: int = 1000
    # Items of the validation set that get PESQ/SI-SDR, audio samples and spectrogram images.
    metric_items: int = 4
    audio_items: int = 2
    # Validation mel distance is also logged with this many codebooks (lower bitrates).
    val_num_codebooks: tuple[int, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    """The ``train:`` section of a preset."""

    seed: int = 0
    max_steps: int = 100_000
    precision: str = "32-true"
    # Exponential moving average of the generator weights (0 disables); export uses it.
    ema_decay: float = 0.0
    # Warm start: a model directory whose tensors of matching name and shape initialise the
    # generator (the others keep their random initialisation; a resumed run ignores this).
    init_from: str | None = None
    # Parts of the generator that do not train: "encoder", "quantizer". With both frozen the
    # codes of every input stay those of the warm-start model (decoder-only fine-tuning).
    freeze: tuple[str, ...] = ()
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # Semantic distillation of the first codebook (codec.train.semantic); off by default.
    semantic: SemanticConfig = field(default_factory=SemanticConfig)

    def __post_init__(self) -> None:
        _check(self.max_steps > 0, "max_steps must be positive")
        _check(0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)")
        d = self.data
        _check(d.segment_seconds > 0 and d.val_seconds > 0, "data segment lengths must be positive")
        _check(d.batch_size > 0 and d.num_workers >= 0, "data.batch_size must be positive")
        _check(0.0 <= d.val_fraction < 1.0, "data.val_fraction must be in [0, 1)")
        loss = self.loss
        _check(
            len(loss.mel_windows) == len(loss.mel_bins), "loss.mel_windows and loss.mel_bins differ in length"
        )
        weights = (loss.mel, loss.stft, loss.waveform, loss.phase, loss.phase_absolute, loss.complex)
        weights += (loss.adversarial, loss.feature)
        _check(min((*weights, loss.commitment, loss.codebook)) >= 0, "loss weights must be >= 0")
        unknown = sorted(set(self.freeze) - {"encoder", "quantizer"})
        _check(not unknown, f"freeze: unknown parts {unknown} (valid: encoder, quantizer)")
        _check(
            not (self.semantic.enabled and "quantizer" in self.freeze),
            "semantic distillation trains the first codebook: it cannot run with freeze: [quantizer]",
        )
        _check(self.optimizer.decay_steps >= 0, "optimizer.decay_steps must be >= 0")
        bands = self.discriminator.bands
        _check(
            len(bands) >= 2 and bands[0] == 0.0 and bands[-1] == 1.0 and list(bands) == sorted(bands),
            "discriminator.bands must rise from 0.0 to 1.0",
        )
        _check(self.checkpoint.every_n_steps > 0, "checkpoint.every_n_steps must be positive")
        _check(self.logging.every_n_steps > 0, "logging.every_n_steps must be positive")
        _check(self.logging.val_every_n_steps > 0, "logging.val_every_n_steps must be positive")

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"train: {message}")


@dataclass(frozen=True)
class Preset:
    """A preset file: the model and how to train it."""

    model: CodecConfig
    train: TrainConfig


def load_train_preset(path: str) -> Preset:
    """Read a preset (path or bundled name) into a :class:`Preset`; errors are :class:`ConfigError`."""
    data = load_preset(path)
    model = from_dict(CodecConfig, data["model"], "model")
    train = from_dict(TrainConfig, data["train"] or {}, "train")
    return Preset(model, train)
