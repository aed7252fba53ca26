"""Discriminators, losses and the loss bookkeeping of the training module."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codec.config import ConfigError, from_dict
from codec.train.config import TrainConfig, load_train_preset
from codec.train.discriminators import Discriminators, PeriodDiscriminator, STFTDiscriminator
from codec.train.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    PhaseDerivativeLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codec.train.module import CodecTrainingModule, lr_factor


def test_period_discriminator_shapes():
    d = PeriodDiscriminator(3, 4)
    logits, feats = d(torch.randn(2, 1601))  # not a multiple of the period: padded
    assert logits.shape[:2] == (2, 1) and logits.shape[-1] == 3
    assert len(feats) == 5 and all(f.shape[0] == 2 and f.shape[-1] == 3 for f in feats)


def test_stft_discriminator_bands_and_shapes():
    d = STFTDiscriminator(256, 4, (0.0, 0.25, 0.5, 1.0))
    assert d.bands == [(0, 32), (32, 64), (64, 129)]
    logits, feats = d(torch.randn(2, 3200))
    frames = 3200 // 64 + 1
    assert logits.shape[:3] == (2, 1, frames)
    assert len(feats) == 3 * 5


def test_discriminators_gather_all_subs():
    d = Discriminators((2, 3), 4, (256, 128), 4, (0.0, 0.5, 1.0))
    out = d(torch.randn(2, 1600))
    assert len(out.logits) == len(out.features) == 4
    with pytest.raises(ValueError):
        Discriminators((), 4, (), 4, (0.0, 1.0))


def test_spectral_losses_are_zero_on_identical_and_grow_with_noise():
    mel = MultiScaleMelLoss(16000, (128, 512), (20, 40))
    stft = MultiResolutionSTFTLoss((256, 512))
    x = torch.randn(2, 4000) * 0.1
    assert float(mel(x, x)) == 0.0 and float(stft(x, x)) < 1e-5
    small, big = x + 0.01 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)
    assert 0 < float(mel(small, x)) < float(mel(big, x))
    assert 0 < float(stft(small, x)) < float(stft(big, x))


def test_phase_derivative_loss_sees_phase_not_level():
    loss = PhaseDerivativeLoss(320)
    t = torch.arange(8000) / 16000
    x = (0.1 * torch.sin(2 * torch.pi * 300 * t) + 0.05 * torch.sin(2 * torch.pi * 1250 * t))[None]
    x = x + 1e-3 * torch.randn_like(x)
    assert float(loss(x, x)) < 1e-3
    assert float(loss(0.3 * x, x)) < 1e-3  # level changes are the spectral losses' business
    assert float(loss(torch.randn_like(x) * 0.1, x)) > 0.5
    y = x.clone().requires_grad_(True)
    loss(y, x + 0.01 * torch.randn_like(x)).backward()
    assert torch.isfinite(y.grad).all()


@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_adversarial_losses(kind):
    real, fake = [torch.full((2, 5), 1.0)], [torch.full((2, 5), -1.0)]
    assert float(discriminator_loss(real, fake, kind)) == pytest.approx(0.0 if kind == "hinge" else 1.0)
    assert float(generator_adversarial_loss([torch.ones(3)], kind)) == pytest.approx(0.0)
    assert float(generator_adversarial_loss([torch.zeros(3)], kind)) == pytest.approx(1.0)
    feats = [[torch.ones(2, 3), torch.full((2, 3), 2.0)]]
    assert float(feature_matching_loss(feats, feats)) == 0.0
    assert float(feature_matching_loss(feats, [[torch.zeros(2, 3), torch.zeros(2, 3)]])) > 0


def test_lr_schedule_warms_up_then_decays():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(500, 10, 100, 0.1) == pytest.approx(0.1)


def test_train_config_is_strict():
    with pytest.raises(ConfigError, match=r"train\.loss\.mell"):
        from_dict(TrainConfig, {"loss": {"mell": 1.0}}, "train")
    with pytest.raises(ConfigError, match="bands"):
        from_dict(TrainConfig, {"discriminator": {"bands": [0.2, 1.0]}}, "train")
    with pytest.raises(ConfigError, match="mel_windows"):
        from_dict(TrainConfig, {"loss": {"mel_windows": [64]}}, "train")
    for name in ("debug", "speech_16k"):
        preset = load_train_preset(name)
        assert preset.train.max_steps > 0


def _module(**weights) -> CodecTrainingModule:
    preset = load_train_preset("debug")
    loss = dataclasses.replace(preset.train.loss, **weights)
    return CodecTrainingModule(preset.model, dataclasses.replace(preset.train, loss=loss))


def test_zero_weight_is_logged_but_not_trained_on():
    torch.manual_seed(0)
    module = _module(waveform=0.0)
    wav = torch.randn(2, 1600) * 0.1
    out = module.generator(wav)
    logs: dict = {}
    total = module._generator_losses(out, wav, False, logs)
    assert "loss/waveform" in logs and float(logs["loss/waveform"]) > 0
    w = module.cfg.loss
    expected = (
        w.mel * logs["loss/mel"]
        + w.stft * logs["loss/stft"]
        + w.commitment * logs["loss/commitment"]
        + w.codebook * logs["loss/codebook"]
    )
    torch.testing.assert_close(total.detach(), expected)
    with_l1 = _module(waveform=2.0)._generator_losses(out, wav, False, {})
    torch.testing.assert_close(with_l1.detach(), expected + 2.0 * logs["loss/waveform"])


def test_quantizer_runs_in_float32_under_mixed_precision():
    from codec.quantize import ResidualVQ

    # 1024 codes per level: without float32, about 14% of the codes differ (near-ties in bf16).
    preset = load_train_preset("speech_16k")
    q = ResidualVQ(preset.model.latent_dim, preset.model.quantizer).eval()
    latent = torch.randn(2048, preset.model.latent_dim).bfloat16().float()
    expected = q(latent).codes
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(latent.bfloat16())
    assert out.quantized.dtype == torch.float32
    torch.testing.assert_close(out.codes, expected)
