"""The ``codec`` command line: round trips, folder mode, pipes, and one clear line per bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.checkpoint import WEIGHTS_NAME, save_model
from codec.cli import main
from codec.pretrained import available
from codec.tokenfile import read_codes, write_codes
from tests.conftest import speech_like

CLI = [sys.executable, "-m", "codec.cli"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, debug_codec: Codec) -> Path:
    return save_model(debug_codec.model, tmp_path_factory.mktemp("model") / "debug")


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory, noncausal_codec: Codec) -> Path:
    return save_model(noncausal_codec.model, tmp_path_factory.mktemp("model") / "other")


@pytest.fixture(scope="module")
def stereo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "stereo.flac"
    sf.write(path, speech_like(44100 + 321, 44100, seed=1, channels=2).T.numpy(), 44100, subtype="PCM_24")
    return path


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codec: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_round_trip_restores_rate_channels_and_length(
    tmp_path, stereo, model_dir, debug_codec, capsys
) -> None:
    code, err = _run(["encode", stereo, "-o", tmp_path / "s.cdc", "--model", model_dir, "-q"], capsys)
    assert code == 0 and err == ""
    codes = read_codes(tmp_path / "s.cdc")
    assert codes.channels == 2 and codes.original_sample_rate == 44100 and codes.num_codebooks == 4
    code, err = _run(["decode", tmp_path / "s.cdc", "-o", tmp_path / "s.wav", "--model", model_dir], capsys)
    assert code == 0 and err == ""
    info = sf.info(tmp_path / "s.wav")
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, 44100 + 321)
    out, _ = sf.read(tmp_path / "s.wav", dtype="float32", always_2d=True)
    want = debug_codec.decode(codes, sample_rate=44100)[0].clamp(-1, 1).numpy().T
    assert np.abs(out - want).max() < 1e-4
    code, _ = _run(
        [
            "decode",
            tmp_path / "s.cdc",
            "-o",
            tmp_path / "r.flac",
            "--model",
            model_dir,
            "--sample-rate",
            "16000",
        ],
        capsys,
    )
    assert code == 0 and sf.info(tmp_path / "r.flac").samplerate == 16000
    code, _ = _run(
        ["encode", stereo, "-o", tmp_path / "k2.cdc", "--model", model_dir, "--num-codebooks", "2"], capsys
    )
    assert code == 0 and torch.equal(read_codes(tmp_path / "k2.cdc").codes, codes.codes[:, :2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k2.cdc", "r.flac", "s.cdc", "s.wav"]


def test_console_entry_points_and_exit_codes(tmp_path, stereo, model_dir) -> None:
    enc = subprocess.run(
        [*CLI, "encode", stereo, "-o", tmp_path / "s.cdc", "--model", model_dir],
        capture_output=True,
        text=True,
    )
    assert enc.returncode == 0 and enc.stderr == "" and enc.stdout == ""
    dec = subprocess.run(
        [sys.executable, "-m", "codec", "decode", tmp_path / "s.cdc", "-o", tmp_path / "s.wav"],
        capture_output=True,
        text=True,
    )
    # No --model: the file names model 'debug', which is not bundled.
    assert dec.returncode == 2 and not (tmp_path / "s.wav").exists()
    _one_error_line(dec.stderr, "s.cdc", "'debug'", "--model")
    bad = subprocess.run(
        [*CLI, "encode", tmp_path / "nope.wav", "-o", tmp_path / "x.cdc"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    _one_error_line(bad.stderr, "nope.wav", "no such file")
    usage = subprocess.run([*CLI, "encode"], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    assert usage.stderr.startswith("codec encode: error:") and "--help" in usage.stderr


def test_internal_errors_exit_1_with_one_line(tmp_path, stereo, model_dir, capsys, monkeypatch) -> None:
    import codec.commands

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(codec.commands, "encode", boom)
    code, err = _run(["encode", stereo, "-o", tmp_path / "x.cdc", "--model", model_dir], capsys)
    assert code == 1 and "internal error" in err and "kaboom" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(RuntimeError, match="kaboom"):
        main(["encode", str(stereo), "-o", str(tmp_path / "x.cdc"), "--model", str(model_dir), "--debug"])
    assert not (tmp_path / "x.cdc").exists()


def _write_bad_inputs(d: Path) -> dict[str, Path]:
    good = d / "good.wav"
    sf.write(good, speech_like(16000).T.numpy(), 16000, subtype="PCM_16")
    flac = d / "good.flac"
    sf.write(flac, speech_like(16000).T.numpy(), 16000)
    files = {
        "empty": d / "empty.wav",
        "text": d / "text.wav",
        "truncated": d / "truncated.wav",
        "truncated_flac": d / "truncated.flac",
        "nan": d / "nan.wav",
        "zero": d / "zero.wav",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not audio\n" * 50)
    files["truncated"].write_bytes(good.read_bytes()[:9000])
    files["truncated_flac"].write_bytes(flac.read_bytes()[:3000])
    nan = speech_like(16000).T.numpy()
    nan[500, 0] = np.inf
    sf.write(files["nan"], nan, 16000, subtype="FLOAT")
    sf.write(files["zero"], np.zeros((0, 1), np.float32), 16000, subtype="PCM_16")
    return files


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("text", "not a readable audio file"),
        ("truncated", "truncated"),
        ("truncated_flac", "truncated.flac"),
        ("nan", "NaN or Inf"),
        ("zero", "empty audio"),
    ],
)
def test_bad_audio_inputs(tmp_path, model_dir, capsys, name: str, fragment: str) -> None:
    files = _write_bad_inputs(tmp_path)
    src = files.get(name, tmp_path / "missing.wav")
    out = tmp_path / "out" / "x.cdc"
    code, err = _run(["encode", src, "-o", out, "--model", model_dir], capsys)
    assert code == 2
    _one_error_line(err, str(src), fragment)
    assert not out.exists() and not any(p.name.startswith(".") for p in out.parent.glob("*"))


@pytest.fixture
def token_file(tmp_path, debug_codec: Codec) -> Path:
    return write_codes(tmp_path / "t.cdc", debug_codec.encode(speech_like(8000)[None], 16000))


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p, d: p.write_bytes(p.read_bytes()[:-7]), "truncated"),
        (lambda p, d: p.write_bytes(p.read_bytes()[:100] + b"\x55" + p.read_bytes()[101:]), "CRC32"),
        (lambda p, d: p.write_bytes(b""), "empty file"),
        (lambda p, d: p.write_bytes(os.urandom(300)), "not a codec token file"),
        (lambda p, d: sf.write(p, np.zeros((100, 1)), 16000, format="WAV"), "looks like a WAV"),
        (
            lambda p, d: p.write_bytes(p.read_bytes()[:8] + b"\x07\x00" + p.read_bytes()[10:]),
            "corrupt token file (CRC32 mismatch)",
        ),
        (
            lambda p, d: write_codes(p, d.encode(speech_like(800)[None], 16000)),
            "made by model 'debug-noncausal'",
        ),
    ],
)
def test_bad_token_inputs(tmp_path, token_file, model_dir, noncausal_codec, capsys, make, fragment) -> None:
    make(token_file, noncausal_codec)
    out = tmp_path / "o.wav"
    code, err = _run(["decode", token_file, "-o", out, "--model", model_dir], capsys)
    assert code == 2 and not out.exists()
    _one_error_line(err, str(token_file), fragment)
    assert [p.name for p in tmp_path.iterdir()] == ["t.cdc"]


def test_bad_models_and_options(tmp_path, stereo, model_dir, capsys) -> None:
    out = tmp_path / "x.cdc"
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((model_dir / "config.json").read_text())
    cases = [
        (["--model", model_dir, "--num-codebooks", "0"], "--num-codebooks 0 is out of range"),
        (["--model", model_dir, "--num-codebooks", "5"], "1..4"),
        (["--model", no_weights], WEIGHTS_NAME),
        (["--model", tmp_path / "nowhere"], "nowhere"),
        (["--model", "no_such_bundled_name"], "no_such_bundled_name"),
    ]
    if not available():
        cases.append(([], "no bundled model exists yet"))
    for extra, fragment in cases:
        code, err = _run(["encode", stereo, "-o", out, *extra], capsys)
        assert code == 2, extra
        _one_error_line(err, fragment)
        assert not out.exists()


def test_outputs_are_protected(tmp_path, stereo, model_dir, token_file, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    odd = tmp_path / "audio.cdc"  # audio with a token-file name: must not be replaced by its tokens
    odd.write_bytes(stereo.read_bytes())
    cases = [
        (["encode", stereo, "-o", blocker / "sub" / "x.cdc"], str(blocker)),
        (["encode", stereo, "-o", tmp_path / "x.wav"], "encode writes tokens"),
        (["decode", token_file, "-o", tmp_path / "x.mp3"], "unsupported output format"),
        (["encode", odd, "-o", odd, "--force"], "replace the input"),
        (["encode", stereo, "-o", blocker], "already exists"),
    ]
    for argv, fragment in cases:
        code, err = _run([*argv, "--model", model_dir], capsys)
        assert code == 2, argv
        _one_error_line(err, fragment)
    assert blocker.read_text() == "x"
    assert _run(["encode", stereo, "-o", blocker, "--model", model_dir, "--force"], capsys)[0] == 0
    assert read_codes(blocker).channels == 2


def test_unwritable_output_folder(tmp_path, stereo, model_dir, capsys, monkeypatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: pretend the permission check says no
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked)
    for argv in (["encode", stereo, "-o", locked / "x.cdc"], ["encode", stereo.parent, "-o", locked]):
        code, err = _run([*argv, "--model", model_dir], capsys)
        assert code == 2
        _one_error_line(err, str(locked), "not writable")
    assert list(locked.iterdir()) == []


def test_folder_mode_mirrors_the_tree(tmp_path, model_dir, capsys) -> None:
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    sf.write(src / "one.wav", speech_like(4000).T.numpy(), 16000)
    sf.write(src / "a" / "two.flac", speech_like(3000, 22050).T.numpy(), 22050)
    sf.write(src / "a" / "b" / "three.ogg", speech_like(5000, seed=3).T.numpy(), 16000)
    (src / "a" / "notes.txt").write_text("ignored")
    code, err = _run(["encode", src, "-o", tmp_path / "tok", "--model", model_dir], capsys)
    assert code == 0 and err == ""
    tokens = sorted(
        str(p.relative_to(tmp_path / "tok")) for p in (tmp_path / "tok").rglob("*") if p.is_file()
    )
    assert tokens == ["a/b/three.cdc", "a/two.cdc", "one.cdc"]
    code, err = _run(
        ["decode", tmp_path / "tok", "-o", tmp_path / "wav", "--model", model_dir, "--format", "flac"], capsys
    )
    assert code == 0 and sf.info(tmp_path / "wav" / "a" / "two.flac").frames == 3000
    assert sf.info(tmp_path / "wav" / "a" / "two.flac").samplerate == 22050
    # Existing outputs: refused up front (nothing touched), skipped, or replaced.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "tok").rglob("*.cdc")}
    code, err = _run(["encode", src, "-o", tmp_path / "tok", "--model", model_dir], capsys)
    assert code == 2
    _one_error_line(err, "already exists", "(and 2 more)", "--force")
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "tok").rglob("*.cdc")}
    (tmp_path / "tok" / "one.cdc").unlink()
    assert (
        _run(["encode", src, "-o", tmp_path / "tok", "--model", model_dir, "--skip-existing"], capsys)[0] == 0
    )
    assert (tmp_path / "tok" / "one.cdc").exists()
    assert _run(["encode", src, "-o", tmp_path / "tok", "--model", model_dir, "--force"], capsys)[0] == 0


def test_folder_mode_reports_bad_files_and_keeps_the_rest(tmp_path, model_dir, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "good.wav", speech_like(4000).T.numpy(), 16000)
    (src / "bad.wav").write_text("not audio")
    code, err = _run(["encode", src, "-o", tmp_path / "out", "--model", model_dir], capsys)
    assert (
        code == 2 and (tmp_path / "out" / "good.cdc").exists() and not (tmp_path / "out" / "bad.cdc").exists()
    )
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "bad.wav" in lines[0] and "1 of 2 files failed" in lines[1]
    code, err = _run(["encode", tmp_path / "out", "-o", tmp_path / "x", "--model", model_dir], capsys)
    assert code == 2
    _one_error_line(err, "no input files")


def test_info(tmp_path, stereo, model_dir, token_file, capsys) -> None:
    code = main(["info", str(model_dir)])
    out = capsys.readouterr().out
    assert code == 0 and "codebook_size" in out and "64" in out and "bitrate_bps" in out
    code = main(["info", str(token_file), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["kind"] == "token file" and doc["duration_s"] == 0.5 and doc["model"] == "debug"
    assert doc["bitrate_bps"] == 100 * 4 * 6
    assert main(["info", str(stereo)]) == 0 and "44100" in capsys.readouterr().out
    (tmp_path / "junk.bin").write_bytes(b"junk" * 10)
    code, err = _run(["info", tmp_path / "junk.bin"], capsys)
    assert code == 2
    _one_error_line(err, "junk.bin", "not a model directory, token file or audio file")


@pytest.mark.parametrize(
    ("command", "module"),
    [("train", "codec.train.cli"), ("export", "codec.train.cli"), ("demo", "codec.demo")],
)
def test_other_commands_are_wired_when_present(command: str, module: str, capsys) -> None:
    pytest.importorskip(module)
    assert main([command, "--help"]) == 0 and f"codec {command}" in capsys.readouterr().out
