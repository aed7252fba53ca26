"""The speech-LM presets train: every parameter of the new layers (fine blocks, pooling,
unpooling) gets a gradient, and tiny versions take real training steps on CPU, export and reload."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codec.checkpoint import load_model
from codec.train.export import export_checkpoint
from codec.train.module import CodecTrainingModule
from codec.train.runner import RunOptions, train
from tests.tiny_presets import PRESETS, tiny_config

from .conftest import debug_preset

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no pre-optimization state was saved"),
    pytest.mark.filterwarnings("ignore:.*your dataloader is not resumable"),
]

NEW_LAYERS = ("encoder.fine.", "encoder.pool.", "decoder.unpool.", "decoder.fine.")


def _recipe(audio_dir, val_dir, name: str):
    debug = debug_preset(audio_dir, val_dir)
    data = dataclasses.replace(debug.train.data, segment_seconds=0.8, batch_size=2)
    logging = dataclasses.replace(debug.train.logging, val_every_n_steps=10**6, val_num_codebooks=())
    recipe = dataclasses.replace(debug.train, max_steps=2, data=data, logging=logging)
    return type(debug)(tiny_config(name), recipe)


@pytest.mark.parametrize("name", PRESETS)
def test_every_parameter_of_the_new_layers_gets_a_gradient(audio_dir, val_dir, name: str) -> None:
    preset = _recipe(audio_dir, val_dir, name)
    torch.manual_seed(0)
    module = CodecTrainingModule(preset.model, preset.train)
    wav = 0.1 * torch.randn(2, 4 * preset.model.hop_length)
    out = module.generator(wav)
    assert out.wav.shape == wav.shape
    module._generator_losses(out, wav, False, {}).backward()
    params = dict(module.generator.named_parameters())
    new = [n for n in params if n.startswith(NEW_LAYERS)]
    assert {n.split(".")[1] for n in new} == {"fine", "pool", "unpool"}
    for n in new:
        assert params[n].grad is not None and params[n].grad.abs().max() > 0, n


@pytest.mark.parametrize("name", PRESETS)
def test_tiny_preset_trains_exports_and_reloads(tmp_path, audio_dir, val_dir, name: str) -> None:
    preset = _recipe(audio_dir, val_dir, name)
    module = train(preset, RunOptions(run_dir=tmp_path / "run", accelerator="cpu", progress_bar=False))
    assert module.global_step == 2
    result = export_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "model")
    model = load_model(result.directory)
    assert model.cfg == preset.model
    wav = 0.1 * torch.randn(2, 16 * model.hop_length, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        codes = model.encode(wav)
        assert codes.shape == (2, model.cfg.quantizer.total_codebooks, 16)
        assert torch.equal(codes, module.generator.eval().encode(wav))
        assert torch.isfinite(model.decode_offline(codes)).all()
