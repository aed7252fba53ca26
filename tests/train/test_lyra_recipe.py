"""The lyra_rvq_16k recipe: decoder fine-tuning of a lyra_v2 model from a k-means model directory."""

from __future__ import annotations

import dataclasses

import torch

from codec.checkpoint import load_model, save_model
from codec.lyra import fit_residual_kmeans, lyra_config
from codec.model import build_model
from codec.train.config import load_train_preset
from tests.conftest import speech_like


def test_lyra_preset_fine_tunes_the_decoder_and_keeps_the_codes(tmp_path, audio_dir, val_dir):
    from codec.train.runner import RunOptions, train

    preset = load_train_preset("lyra_rvq_16k")
    assert preset.model == lyra_config("lyra_rvq_16k") and preset.train.freeze == ("encoder", "quantizer")
    torch.manual_seed(0)
    cfg = dataclasses.replace(
        preset.model, quantizer=dataclasses.replace(preset.model.quantizer, codebook_size=16)
    )
    start = build_model(cfg)
    for p in [*start.encoder.parameters(), *start.decoder.parameters()]:
        torch.nn.init.normal_(p, std=0.05)
    fit_residual_kmeans(start.quantizer, start.encoder(speech_like(16000)).detach()[0], iters=2)
    save_model(start, tmp_path / "kmeans")
    data = dataclasses.replace(preset.train.data, train=(str(audio_dir),), val=(str(val_dir),), batch_size=2)
    train_cfg = dataclasses.replace(preset.train, max_steps=3, init_from=str(tmp_path / "kmeans"), data=data)
    module = train(
        type(preset)(cfg, train_cfg),
        RunOptions(run_dir=tmp_path / "run", accelerator="cpu", progress_bar=False),
    )
    trained, before = module.generator.eval(), load_model(tmp_path / "kmeans")
    wav = speech_like(6400, seed=3)
    assert torch.equal(trained.encode(wav), before.encode(wav))
    for name, tensor in before.state_dict().items():
        assert torch.equal(tensor, trained.state_dict()[name]) == (not name.startswith("decoder.")), name
