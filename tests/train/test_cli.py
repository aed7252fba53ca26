"""``codec train`` / ``codec export`` entry points: exit codes, one-line errors, DDP launch."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codec.train import cli


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="codec")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_train_parser(sub)
    cli.add_export_parser(sub)
    return parser.parse_args(argv)


def test_parsers_do_not_import_lightning():
    code = (
        "import sys, argparse\n"
        "from codec.train import cli\n"
        "p = argparse.ArgumentParser(); s = p.add_subparsers()\n"
        "cli.add_train_parser(s); cli.add_export_parser(s)\n"
        "assert 'lightning' not in sys.modules and 'auraloss' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_help_and_the_readme_list_every_bundled_preset():
    repo = Path(__file__).resolve().parents[2]
    presets = sorted(p.stem for p in (repo / "configs").glob("*.yaml"))
    assert len(presets) >= 6
    parser = argparse.ArgumentParser(prog="codec")
    sub = parser.add_subparsers()
    text = " ".join(cli.add_train_parser(sub).format_help().split())  # argparse wraps lines
    distill = " ".join(cli.add_distill_parser(sub).format_help().split())
    readme = (repo / "README.md").read_text()
    listed = readme.split("**Presets**", 1)[1].split("\n- **", 1)[0]  # the Training section's list
    layout = readme.split("\nconfigs/ ", 1)[1].split("\nbenchmarks/", 1)[0]  # the Layout section's entry
    for name in presets:
        assert name in text and name in distill, name
        assert f"`{name}`" in listed and name in layout, name


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_bad_config_key_is_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: x}\ntrain: {optimiser: {lr: 1.0}}\n")
    assert cli.run_train(_parse("train", "--config", str(bad), "--data", str(tmp_path))) == 2
    assert "train.optimiser" in _one_line_error(capsys)


def test_missing_data_and_empty_folder_are_usage_errors(tmp_path, capsys):
    args = _parse("train", "--config", "debug", "--data", str(tmp_path / "nope"), "--run-dir", str(tmp_path))
    assert cli.run_train(args) == 2
    assert "no such folder" in _one_line_error(capsys)
    args = _parse("train", "--config", "debug", "--data", str(tmp_path), "--run-dir", str(tmp_path))
    assert cli.run_train(args) == 2
    assert "no audio files found" in _one_line_error(capsys)


def test_missing_resume_and_unknown_preset(tmp_path, capsys, audio_dir):
    args = _parse(
        "train", "--config", "debug", "--data", str(audio_dir), "--resume", str(tmp_path / "x.ckpt")
    )
    assert cli.run_train(args) == 2
    assert "no such checkpoint" in _one_line_error(capsys)
    assert cli.run_train(_parse("train", "--config", "nonexistent_preset")) == 2
    assert "nonexistent_preset" in _one_line_error(capsys)


def test_export_errors(tmp_path, capsys):
    assert cli.run_export(_parse("export", str(tmp_path / "none.ckpt"), "-o", str(tmp_path / "m"))) == 2
    assert "no such checkpoint" in _one_line_error(capsys)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert cli.run_export(_parse("export", str(junk), "-o", str(tmp_path / "m"))) == 2
    _one_line_error(capsys)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    assert cli.run_export(_parse("export", str(other), "-o", str(tmp_path / "m"))) == 2
    assert "not a codec training checkpoint" in _one_line_error(capsys)


def test_export_command(debug_run, tmp_path, capsys):
    ckpt = debug_run.run_dir / "checkpoints" / "last.ckpt"
    assert cli.run_export(_parse("export", str(ckpt), "-o", str(tmp_path / "model"))) == 0
    assert "step 50" in capsys.readouterr().out
    assert (tmp_path / "model" / "config.json").is_file()
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert cli.run_export(_parse("export", str(ckpt), "-o", str(tmp_path / "half"), "--half")) == 0
    from safetensors.torch import load_file

    dtypes = {t.dtype for t in load_file(str(tmp_path / "half" / "model.safetensors")).values()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path, audio_dir, val_dir):
    """``--devices 2`` on CPU: Lightning launches a second process, gloo connects them."""
    run_dir = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "codec.train.cli",
        "train",
        "--config",
        "debug",
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--max-steps",
        "4",
        "--data",
        str(audio_dir),
        "--val-data",
        str(val_dir),
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_PORT=str(29500 + os.getpid() % 1000))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=Path.cwd())
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4
