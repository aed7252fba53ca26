"""Recipe options for phase-coherent training: complex-STFT loss, warm start, frozen parts, WSD.

The decoder-only fine-tune is the option that keeps a model's tokens: after training, every
input must still get exactly the warm-start model's codes, while the decoder has changed.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from codec.checkpoint import CheckpointError, load_model, save_model
from codec.model import build_model
from codec.train.losses import CompressedComplexSTFTLoss, MultiResolutionSTFTLoss
from codec.train.module import lr_factor
from codec.train.warmstart import frozen_quantize, warm_start
from tests.train.conftest import debug_preset


def _tone(n: int = 8000) -> torch.Tensor:
    t = torch.arange(n) / 16000
    return (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.1 * torch.sin(2 * math.pi * 1330 * t))[None]


def test_complex_loss_sees_phase_where_magnitude_losses_do_not():
    x = _tone()
    shifted = -x  # same magnitude spectrum everywhere, every phase turned by pi
    complex_loss, stft = CompressedComplexSTFTLoss((256, 512)), MultiResolutionSTFTLoss((256, 512))
    assert float(complex_loss(x, x)) == 0.0
    assert float(stft(shifted, x)) < 1e-4
    assert float(complex_loss(shifted, x)) > 0.1
    # A small phase error costs less than a large one.
    delayed_1, delayed_8 = torch.roll(x, 1, -1), torch.roll(x, 8, -1)
    assert 0 < float(complex_loss(delayed_1, x)) < float(complex_loss(delayed_8, x))


def test_wsd_schedule_holds_then_decays():
    kw = {"warmup": 10, "max_steps": 100, "min_ratio": 0.1}
    assert lr_factor(4, **kw, schedule="wsd", decay_steps=20) == pytest.approx(0.5)
    assert lr_factor(50, **kw, schedule="wsd", decay_steps=20) == 1.0
    assert lr_factor(79, **kw, schedule="wsd", decay_steps=20) == 1.0
    assert 0.1 < lr_factor(90, **kw, schedule="wsd", decay_steps=20) < 1.0
    assert lr_factor(100, **kw, schedule="wsd", decay_steps=20) == pytest.approx(0.1)
    # The cosine schedule is unchanged by decay_steps.
    assert lr_factor(50, **kw, schedule="cosine", decay_steps=20) < 1.0


def test_warm_start_loads_matching_tensors_and_reports_the_rest(tmp_path):
    preset = debug_preset(tmp_path, tmp_path)
    torch.manual_seed(0)
    source = build_model(preset.model)
    save_model(source, tmp_path / "src")
    decoder = dataclasses.replace(preset.model.decoder, head_upsample=4)
    target = build_model(dataclasses.replace(preset.model, decoder=decoder))
    with pytest.warns(UserWarning, match="keep their initialisation"):
        skipped = warm_start(target, tmp_path / "src")
    assert skipped == ["decoder.head.proj.bias", "decoder.head.proj.weight"]
    src = source.state_dict()
    for name, tensor in target.state_dict().items():
        if name not in skipped:
            assert torch.equal(tensor, src[name]), name
    with pytest.raises(CheckpointError):
        warm_start(target, tmp_path / "missing")


def test_warm_start_spreads_a_one_window_head_over_a_finer_grid(tmp_path):
    preset = debug_preset(tmp_path, tmp_path)
    torch.manual_seed(0)
    source = build_model(preset.model)
    save_model(source, tmp_path / "src")
    hop = preset.model.hop_length
    decoder = dataclasses.replace(preset.model.decoder, head_upsample=2, head_window=2 * hop)
    target = build_model(dataclasses.replace(preset.model, decoder=decoder))
    assert warm_start(target, tmp_path / "src") == []  # the head too: nothing keeps its init
    head, src = target.decoder.head, source.decoder.head
    features = torch.randn(3, 5, preset.model.decoder.dim)
    with torch.no_grad():
        one = src.proj(features).reshape(3, 5, 2, head.bins)
        two = head.proj(features).reshape(3, 5, 2, 2, head.bins)
    # Both windows: the source's magnitudes; window 0 its phase delayed by one sub-hop, window 1 as is.
    delay = 2 * torch.pi * torch.arange(head.bins) * head.sub_hop / head.n_fft
    torch.testing.assert_close(two[:, :, 0, 0], one[:, :, 0])
    torch.testing.assert_close(two[:, :, 1, 0], one[:, :, 0])
    torch.testing.assert_close(two[:, :, 0, 1], one[:, :, 1] - delay, atol=1e-4, rtol=0)
    torch.testing.assert_close(two[:, :, 1, 1], one[:, :, 1])


def test_frozen_quantizer_matches_the_quantizer_and_passes_gradients():
    preset = debug_preset(".", ".")
    torch.manual_seed(0)
    model = build_model(preset.model).eval()
    latent = torch.randn(50, preset.model.latent_dim, requires_grad=True)
    out = frozen_quantize(model.quantizer, latent, training=False)
    assert torch.equal(out.codes, model.quantizer.encode(latent.detach()))
    torch.testing.assert_close(out.quantized, model.quantizer.decode(out.codes))
    out.quantized.sum().backward()
    torch.testing.assert_close(latent.grad, torch.ones_like(latent))
    # Dropout in training: some rows use fewer levels, none uses more.
    torch.manual_seed(1)
    dropped = frozen_quantize(model.quantizer, latent.detach(), training=True)
    assert dropped.num_active.min() < preset.model.quantizer.total_codebooks
    assert torch.equal(dropped.codes, out.codes)


def test_decoder_only_fine_tune_keeps_the_codes(tmp_path, audio_dir, val_dir):
    from codec.train.runner import RunOptions, train

    preset = debug_preset(audio_dir, val_dir)
    torch.manual_seed(0)
    start = build_model(preset.model)
    save_model(start, tmp_path / "start")
    loss = dataclasses.replace(preset.train.loss, complex=5.0)
    cfg = dataclasses.replace(
        preset.train,
        max_steps=6,
        init_from=str(tmp_path / "start"),
        freeze=("encoder", "quantizer"),
        loss=loss,
        discriminator=dataclasses.replace(preset.train.discriminator, start_step=None),
    )
    module = train(
        type(preset)(preset.model, cfg),
        RunOptions(run_dir=tmp_path / "run", accelerator="cpu", progress_bar=False),
    )
    trained = module.generator.eval()
    before = load_model(tmp_path / "start")
    wav = _tone(3200)
    assert torch.equal(trained.encode(wav), before.encode(wav))
    for name, tensor in before.state_dict().items():
        same = torch.equal(tensor, trained.state_dict()[name])
        assert same == (not name.startswith("decoder.")), name


def test_absolute_phase_loss_turns_phases_and_ignores_level():
    from codec.train.losses import AbsolutePhaseLoss

    x = _tone()
    loss = AbsolutePhaseLoss(320)
    assert float(loss(x, x)) < 1e-3
    assert float(loss(0.1 * x, x)) < 1e-3  # level is not its business
    assert float(loss(-x, x)) > 1.5  # every phase turned by pi: 1 - cos = 2 where there is energy
    assert 0 < float(loss(torch.roll(x, 2, -1), x)) < float(loss(torch.roll(x, 12, -1), x))
