"""Hostile inputs to ``codec train``/``export``/``distill``/``demo``: names that are paths, an
export over an existing model, bad ``--resume`` files, silence, damaged or odd-rate training
audio, and the process-wide float setting training used to leave behind."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional
import yaml

from codec import Codec
from codec.audio import MAX_RATIO_PRODUCT
from codec.checkpoint import CheckpointError, save_model
from codec.cli import main
from codec.config import CodecConfig, ConfigError
from codec.model import build_model
from codec.tokenfile import read_codes, write_codes
from codec.train import cli
from codec.train.runner import RunOptions, flushes_denormals, train
from tests.train.conftest import debug_preset, synth
from tests.train.test_distill import _student_yaml

DEBUG_YAML = Path(__file__).parents[2] / "configs" / "debug.yaml"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="codec")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_train_parser(sub)
    cli.add_export_parser(sub)
    cli.add_distill_parser(sub)
    return parser.parse_args(argv)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def _checkpoint(path: Path, seed: int, **model_changes) -> Path:
    """A training checkpoint as ``codec train`` writes it (generator weights, model config)."""
    cfg = CodecConfig.from_yaml("debug").to_dict()
    for key, value in model_changes.items():
        section, name = key.split(".")
        cfg[section][name] = value
    torch.manual_seed(seed)
    model = build_model(CodecConfig.from_dict(cfg))
    state = {f"generator.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"model": cfg}, "global_step": seed}, path)
    return path


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", ".hidden", "~x", "a\\b", "x" * 129, ""])
def test_a_model_name_that_is_a_path_is_refused_at_config_load(tmp_path, monkeypatch, capsys, name) -> None:
    with pytest.raises(ConfigError, match="not a plain model name"):
        CodecConfig(name=name)
    preset = yaml.safe_load(DEBUG_YAML.read_text())
    preset["model"]["name"] = name
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump(preset))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = _parse(
        "train", "--config", str(tmp_path / "evil.yaml"), "--data", str(tmp_path), "--max-steps", "1"
    )
    assert cli.run_train(args) == 2
    assert "not a plain model name" in _one_line(capsys)
    assert sorted(os.listdir(tmp_path)) == ["evil.yaml", "work"] and os.listdir(work) == []
    # A model directory whose config.json names a path is refused when loaded, not used.
    model_dir = save_model(build_model(CodecConfig.from_yaml("debug")), tmp_path / "m")
    doc = json.loads((model_dir / "config.json").read_text())
    doc["config"]["name"] = name
    (model_dir / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="not a plain model name"):
        Codec.from_pretrained(model_dir)


def test_export_never_replaces_a_model_without_force(tmp_path, capsys) -> None:
    a, b = _checkpoint(tmp_path / "a.ckpt", 4), _checkpoint(tmp_path / "b.ckpt", 25)
    model = tmp_path / "models" / "m"
    assert main(["export", str(a), "-o", str(model)]) == 0
    codec_a = Codec.from_pretrained(model)
    write_codes(tmp_path / "t.cdc", codec_a.encode(torch.from_numpy(synth(0.5, 16000, 1).T)[None], 16000))
    capsys.readouterr()
    assert main(["export", str(b), "-o", str(model)]) == 2
    assert "already exists (use --force to replace it)" in _one_line(capsys)
    assert Codec.from_pretrained(model).fingerprint == codec_a.fingerprint
    Codec.from_pretrained(model).decode(read_codes(tmp_path / "t.cdc"))  # still decodes
    assert main(["export", str(b), "-o", str(model), "--force"]) == 0
    assert "step 25" in capsys.readouterr().out
    assert Codec.from_pretrained(model).fingerprint != codec_a.fingerprint
    assert sorted(os.listdir(model.parent)) == ["m"]  # no staging, lock or old folder left


def test_a_failed_or_killed_export_leaves_the_old_model(tmp_path, monkeypatch) -> None:
    from codec.train import export

    a, b = _checkpoint(tmp_path / "a.ckpt", 4), _checkpoint(tmp_path / "b.ckpt", 25)
    model = tmp_path / "m"
    export.export_checkpoint(a, model)
    before = Codec.from_pretrained(model).fingerprint

    def half_written(model_, directory, **kwargs):  # the weights, then a failure (a full disk)
        save_model(model_, directory, **kwargs)
        (Path(directory) / "config.json").unlink()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "save_model", half_written)
    with pytest.raises(OSError, match="No space"):
        export.export_checkpoint(b, model, replace=True)
    monkeypatch.undo()
    assert Codec.from_pretrained(model).fingerprint == before
    assert sorted(os.listdir(tmp_path)) == ["a.ckpt", "b.ckpt", "m"]
    # Killed between moving the old folder out and the new one in: the next export puts it back.
    os.rename(model, tmp_path / ".m.old.codec-tmp")
    with export.staged_dir(model, replace=True) as staging:
        assert Codec.from_pretrained(model).fingerprint == before  # put back before anything else
        shutil.copytree(model, staging, dirs_exist_ok=True)
    assert sorted(os.listdir(tmp_path)) == ["a.ckpt", "b.ckpt", "m"]
    assert Codec.from_pretrained(model).fingerprint == before


@pytest.mark.parametrize("kind", ["garbage", "truncated", "other architecture", "not a checkpoint"])
def test_resume_from_a_bad_checkpoint_is_one_line_and_exit_2(
    tmp_path, capsys, audio_dir, val_dir, kind
) -> None:
    bad = tmp_path / "bad.ckpt"
    if kind == "garbage":
        bad.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        full = _checkpoint(tmp_path / "full.ckpt", 1).read_bytes()
        bad.write_bytes(full[: len(full) // 2])
    elif kind == "other architecture":
        _checkpoint(bad, 1, **{"encoder.num_layers": 3})
    else:
        torch.save({"weights": torch.zeros(3)}, bad)
    argv = ["train", "--config", "debug", "--data", str(audio_dir), "--val-data", str(val_dir)]
    argv += ["--resume", str(bad), "--max-steps", "1", "--run-dir", str(tmp_path / "run"), "--no-progress"]
    assert cli.run_train(_parse(*argv, "--accelerator", "cpu")) == 2
    err = _one_line(capsys)
    assert str(bad) in err and "weights_only" not in err and "internal error" not in err
    if kind == "other architecture":
        assert "model.encoder.num_layers is 3 in it, 2 in this run's config" in err


def test_demo_on_a_silent_file_says_what_it_could_not_score(tmp_path, capsys) -> None:
    pytest.importorskip("pesq")
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    model = save_model(build_model(CodecConfig.from_yaml("debug")), tmp_path / "m")
    assert main(["demo", "--input", str(tmp_path / "silent.wav"), "--model", str(model)]) == 0
    assert "PESQ-wb: not scored (No utterances detected)" in capsys.readouterr().out


def test_training_and_distillation_put_the_float_setting_back(tmp_path, audio_dir, val_dir) -> None:
    torch.set_flush_denormal(False)
    assert not flushes_denormals()
    train(debug_preset(audio_dir, val_dir, max_steps=1), RunOptions(tmp_path / "t", accelerator="cpu",
                                                                    progress_bar=False))  # fmt: skip
    assert not flushes_denormals(), "training left subnormal floats flushed to zero"
    teacher = save_model(build_model(CodecConfig.from_yaml("debug")), tmp_path / "teacher")
    config = _student_yaml(tmp_path / "s.yaml", audio_dir, val_dir)
    argv = ["distill", "--teacher", str(teacher), "--config", str(config), "-o", str(tmp_path / "d")]
    assert cli.run_distill(_parse(*argv, "--max-steps", "1", "--accelerator", "cpu", "--no-progress")) == 0
    assert not flushes_denormals(), "distillation left subnormal floats flushed to zero"
    torch.set_flush_denormal(True)  # and a caller's own setting is kept too
    train(debug_preset(audio_dir, val_dir, max_steps=1), RunOptions(tmp_path / "t2", accelerator="cpu",
                                                                    progress_bar=False))  # fmt: skip
    assert flushes_denormals()
    torch.set_flush_denormal(False)


def test_training_data_goes_through_the_library_reader(tmp_path, monkeypatch) -> None:
    from codec.train.config import DataConfig
    from codec.train.data import DataError, RandomCrops, find_audio

    folder = tmp_path / "data"
    folder.mkdir()
    sf.write(folder / "odd_rate.wav", synth(1.0, 44101, 3), 44101)
    original = torchaudio.functional.resample

    def bounded(wav, orig, new, *args, **kwargs):
        # The filter torchaudio builds grows with orig * new (reduced rates): 44101:16000 would
        # take about 2.8 GB per call.  Refuse before allocating anything.
        assert orig * new <= MAX_RATIO_PRODUCT, f"unbounded resampling filter {orig}:{new}"
        return original(wav, orig, new, *args, **kwargs)

    monkeypatch.setattr(torchaudio.functional, "resample", bounded)
    files = find_audio([str(folder)])
    crops = RandomCrops(files, DataConfig(), 16000, 3200, seed=0)
    assert crops[0].shape == (3200,) and torch.isfinite(crops[0]).all()
    # A truncated file is refused when the data is listed, naming it (it used to be read short).
    sf.write(folder / "cut.wav", synth(1.0, 16000, 4), 16000, subtype="PCM_16")
    data = (folder / "cut.wav").read_bytes()
    (folder / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.wav: truncated"):
        find_audio([str(folder)])
