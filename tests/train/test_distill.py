"""``codec distill`` on tiny models: losses, teacher cache, initialisation from the teacher,
export and reload, resume, and one-line errors for bad arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
import yaml

from codec.checkpoint import save_model
from codec.config import CodecConfig, ConfigError
from codec.model import build_model
from codec.train import cli
from codec.train.distill import (
    LatentProjection,
    block_map,
    code_cross_entropy,
    distill_losses,
    init_from_teacher,
    load_distill_preset,
    student_forward,
    teacher_targets,
)
from codec.train.losses import MultiScaleMelLoss
from codec.train.teacher_cache import TeacherCache


def _student_yaml(path: Path, audio: Path, val: Path, **distill) -> Path:
    """The debug preset with half the teacher's depth (encoder 1 block, decoder 1 block)."""
    data = yaml.safe_load((Path(__file__).parents[2] / "configs" / "debug.yaml").read_text())
    data["model"]["name"] = "debug_small"
    data["model"]["encoder"]["num_layers"] = 1
    data["model"]["decoder"]["num_layers"] = 1
    data["train"].update(max_steps=4, freeze=["quantizer"], distill={"pool_items": 4, **distill})
    data["train"]["data"].update(train=[str(audio)], val=[str(val)], val_items=1)
    data["train"]["checkpoint"] = {"every_n_steps": 2, "keep_last": 2}
    data["train"]["logging"].update(every_n_steps=1, val_every_n_steps=100)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A debug-sized teacher with random weights (4 codebooks of 64, 2 + 2 blocks)."""
    torch.manual_seed(0)
    return save_model(build_model(CodecConfig.from_yaml("debug")), tmp_path_factory.mktemp("teacher") / "t")


def _models(teacher_dir: Path, tmp_path: Path, audio_dir: Path, val_dir: Path):
    from codec.checkpoint import load_model

    preset = load_distill_preset(_student_yaml(tmp_path / "s.yaml", audio_dir, val_dir))
    torch.manual_seed(1)
    return preset, build_model(preset.model), load_model(teacher_dir)


def test_block_map_takes_every_other_block():
    assert block_map(3, 6) == [0, 2, 4]
    assert block_map(4, 8) == [0, 2, 4, 6]
    assert block_map(1, 6) == [0]
    assert block_map(4, 4) == [0, 1, 2, 3]


def test_init_from_teacher_copies_mapped_blocks_and_quantizer():
    base = CodecConfig.from_yaml("debug").to_dict()
    deep = {
        **base,
        "encoder": {**base["encoder"], "num_layers": 4},
        "decoder": {**base["decoder"], "num_layers": 4},
    }
    torch.manual_seed(0)
    teacher, student = build_model(CodecConfig.from_dict(deep)), build_model(CodecConfig.from_yaml("debug"))
    copied = init_from_teacher(student, teacher)
    s, t = student.state_dict(), teacher.state_dict()
    assert set(copied) == set(s)  # same widths: every tensor has a source
    for part in ("encoder", "decoder"):
        for mine, theirs in ((0, 0), (1, 2)):  # every other block
            for leaf in ("pwconv1.weight", "dwconv.weight", "gamma", "norm.bias"):
                name = f"{part}.trunk.blocks.{mine}.{leaf}"
                assert torch.equal(s[name], t[f"{part}.trunk.blocks.{theirs}.{leaf}"]), name
    for k in range(4):
        assert torch.equal(
            s[f"quantizer.levels.{k}.codebook.embed"], t[f"quantizer.levels.{k}.codebook.embed"]
        )
        assert torch.equal(
            s[f"quantizer.levels.{k}.in_proj.weight"], t[f"quantizer.levels.{k}.in_proj.weight"]
        )
    assert torch.equal(s["decoder.head.proj.weight"], t["decoder.head.proj.weight"])
    assert torch.equal(s["encoder.frontend.proj.weight"], t["encoder.frontend.proj.weight"])
    # A student of another width keeps its own trunk (shapes differ) but still gets the codebooks.
    wide = build_model(CodecConfig.from_dict({**base, "encoder": {**base["encoder"], "dim": 48}}))
    before = wide.encoder.trunk.blocks[0].pwconv1.weight.clone()
    copied = init_from_teacher(wide, teacher)
    assert "encoder.trunk.blocks.0.pwconv1.weight" not in copied
    assert torch.equal(wide.encoder.trunk.blocks[0].pwconv1.weight, before)
    assert "quantizer.levels.0.codebook.embed" in copied


def test_each_loss_is_computed_with_gradients(teacher_dir, tmp_path, audio_dir, val_dir):
    preset, student, teacher = _models(teacher_dir, tmp_path, audio_dir, val_dir)
    wav = 0.1 * torch.randn(2, 8 * 160, generator=torch.Generator().manual_seed(0))
    targets = teacher_targets(teacher, wav)
    assert targets.latent.shape == (2, 8, 32) and targets.codes.shape == (2, 4, 8)
    assert targets.wav.shape == wav.shape
    latent, out = student_forward(student.train(), wav, ())
    mel = MultiScaleMelLoss(16000, (128, 256), (20, 40))
    terms = distill_losses(
        latent, out, targets, student.quantizer, LatentProjection(32, 32), mel, preset.distill, True
    )
    for name in ("latent", "codes", "teacher_mel"):
        weight, value = terms[name]
        assert weight > 0 and torch.isfinite(value) and value > 0, name
        student.zero_grad()
        value.backward(retain_graph=True)
        grad = student.encoder.trunk.blocks[0].pwconv1.weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert 0 <= terms["code_agreement_all"][1] <= 1


def test_code_loss_prefers_the_teachers_codes(teacher_dir):
    """With the teacher as its own student, its codes score higher than any other codes."""
    from codec.checkpoint import load_model

    teacher = load_model(teacher_dir)
    wav = 0.1 * torch.randn(2, 8 * 160, generator=torch.Generator().manual_seed(1))
    targets = teacher_targets(teacher, wav)
    latent = teacher.encoder(wav).reshape(16, -1)
    codes = targets.codes.transpose(1, 2).reshape(16, -1)
    own = code_cross_entropy(teacher.quantizer, latent, codes, 0.1)
    shifted = code_cross_entropy(teacher.quantizer, latent, (codes + 1) % 64, 0.1)
    assert own < shifted
    _, out = student_forward(teacher.eval(), wav, ())
    assert torch.equal(out.quantizer.codes, codes)  # agreement 1: the same encoder picks the same codes


def test_cache_is_written_once_and_equals_on_the_fly(teacher_dir, tmp_path):
    from codec.checkpoint import load_model

    teacher = load_model(teacher_dir)
    wav = 0.1 * torch.randn(3, 8 * 160, generator=torch.Generator().manual_seed(2))
    calls = []

    def compute(w):
        calls.append(w.shape[0])
        return teacher_targets(teacher, w)

    cache = TeacherCache(tmp_path / "c", {"teacher": "x", "pool_items": 4})
    first = cache.lookup([0, 1, 2], wav, compute)
    again = TeacherCache(tmp_path / "c", {"teacher": "x", "pool_items": 4}).lookup(
        [2, 0, 1], wav[[2, 0, 1]], compute
    )
    assert calls == [3]  # the second lookup read every entry back
    fresh = teacher_targets(teacher, wav)
    for got in (first, again):
        order = [0, 1, 2] if got is first else [2, 0, 1]
        assert torch.equal(got.latent, fresh.latent[order])
        assert torch.equal(got.codes, fresh.codes[order])
        assert torch.equal(got.wav, fresh.wav[order])
    cache.lookup([1, 3], wav[:2], compute)  # one new crop: only it is computed
    assert calls == [3, 1]
    with pytest.raises(ConfigError, match="another teacher"):
        TeacherCache(tmp_path / "c", {"teacher": "y", "pool_items": 4})


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="codec")
    cli.add_distill_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["distill", *argv])


def test_distill_export_reload_and_resume(teacher_dir, tmp_path, audio_dir, val_dir, capsys):
    from codec import Codec
    from codec.train.export import export_checkpoint

    config = _student_yaml(tmp_path / "s.yaml", audio_dir, val_dir)
    run = tmp_path / "run"
    argv = ["--teacher", str(teacher_dir), "--config", str(config), "-o", str(run), "--no-progress"]
    assert cli.run_distill(_parse(*argv, "--max-steps", "2", "--accelerator", "cpu")) == 0
    entries = sorted((run / "teacher_cache").glob("*.safetensors"))
    assert len(entries) == 4  # the pool: 4 crops, computed once, reused by the second step
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert not [k for k in ckpt["state_dict"] if k.startswith("teacher.")]
    argv += ["--accelerator", "cpu", "--resume", str(run / "checkpoints" / "last.ckpt")]
    assert cli.run_distill(_parse(*argv)) == 0  # resumed to max_steps 4, teacher reloaded
    # Another teacher (other weights) cannot continue this run.
    torch.manual_seed(5)
    other = save_model(build_model(CodecConfig.from_yaml("debug")), tmp_path / "other_teacher")
    argv_other = [a if a != str(teacher_dir) else str(other) for a in argv] + [
        "--cache-dir",
        str(tmp_path / "c2"),
    ]
    assert cli.run_distill(_parse(*argv_other, "--max-steps", "6")) == 2
    assert "another teacher" in capsys.readouterr().err
    result = export_checkpoint(run / "checkpoints" / "last.ckpt", tmp_path / "model")
    assert result.step == 4
    codec = Codec.from_pretrained(tmp_path / "model")
    assert len(codec.model.encoder.trunk.blocks) == 1
    codes = codec.encode(0.1 * torch.randn(1, 1, 1600), sample_rate=16000)
    assert codes.codes.shape[1] == 4


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        ({}, ["--teacher", "/no/such/model"], "no such model directory"),
        ({"codes": -1.0}, [], "loss weights must be >= 0"),
        ({"pool_size": 4}, [], "train.distill.pool_size"),
        ({}, ["--max-seconds", "0"], "--max-seconds must be positive"),
        ({}, ["--resume", "/no/such.ckpt"], "no such checkpoint"),
        ({}, ["--config", "debug_nope"], "no such config file"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    teacher_dir, tmp_path, audio_dir, val_dir, capsys, change, extra, message
):
    config = _student_yaml(tmp_path / "s.yaml", audio_dir, val_dir, **change)
    argv = ["--teacher", str(teacher_dir), "--config", str(config), "-o", str(tmp_path / "run"), *extra]
    assert cli.run_distill(_parse(*argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and message in err, err


def test_teacher_of_another_frame_rate_is_refused(tmp_path, audio_dir, val_dir, capsys):
    cfg = CodecConfig.from_dict({**CodecConfig.from_yaml("debug").to_dict(), "hop_length": 320})
    teacher = save_model(build_model(cfg), tmp_path / "t320")
    config = _student_yaml(tmp_path / "s.yaml", audio_dir, val_dir)
    argv = [
        "--teacher",
        str(teacher),
        "--config",
        str(config),
        "-o",
        str(tmp_path / "run"),
        "--accelerator",
        "cpu",
    ]
    assert cli.run_distill(_parse(*argv)) == 2
    assert "hop_length" in capsys.readouterr().err


def test_distill_is_a_codec_command_and_its_parser_stays_light(capsys):
    import subprocess
    import sys

    from codec.cli import main

    assert main(["distill", "--help"]) == 0 and "--teacher" in capsys.readouterr().out
    code = (
        "import sys, argparse\n"
        "from codec.train import cli\n"
        "cli.add_distill_parser(argparse.ArgumentParser().add_subparsers())\n"
        "assert 'lightning' not in sys.modules and 'codec.train.distill' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bundled_student_preset_fits_the_bundled_teacher():
    from codec.train.distill import check_compatible

    preset = load_distill_preset("speech_16k_small")
    check_compatible(preset.model, CodecConfig.from_yaml("speech_16k"), preset.distill)
    assert preset.train.freeze == ("quantizer",) and preset.distill.pool_items > 0
    assert preset.model.quantizer == CodecConfig.from_yaml("speech_16k").quantizer


def test_distillation_overrides_only_the_batch_forward_and_the_losses() -> None:
    """One training step for both recipes: distillation changes what differs, never the step."""
    from codec.train.distill_run import DistillationModule
    from codec.train.module import CodecTrainingModule

    steps = ("training_step", "_generator_losses", "_generator_update", "_discriminator_step")
    assert not [name for name in steps if name in vars(DistillationModule)]
    assert {"forward_batch", "extra_losses"} <= set(vars(DistillationModule)) & set(vars(CodecTrainingModule))
