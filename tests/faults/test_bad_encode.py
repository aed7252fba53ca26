"""Bad input to ``codec encode``: one line, the right status, no traceback, no file left behind.

Each case builds its inputs in a fresh folder, runs the command in this process, and checks
that the folder holds exactly what the case put there afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.faults import kit as K

# (id, make(folder, kit) -> (argv, stdin bytes or None), exit status, fragment of the line)
CASES: list[tuple] = []


def case(name: str, status: int, fragment: str):
    def register(make):
        CASES.append(pytest.param(make, status, fragment, id=name))
        return make

    return register


def enc(src, out, *extra, model=True) -> list:
    return ["encode", src, "-o", out, *extra] + ([] if not model else ["--model", K_MODEL[0]])


K_MODEL: list[Path] = []  # filled by the kit fixture (the model directory)


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def audio_case(name: str, fragment: str, build):
    """A damaged audio file ``in<ext>`` made by ``build(path)``, encoded to ``x.cdc``."""

    def make(d: Path, kit: K.Kit):
        path = build(d)
        return enc(path, d / "x.cdc"), None

    CASES.append(pytest.param(make, 2, fragment, id=name))


for _name, _frag, _build in [
    ("missing", "no such file", lambda d: d / "none.wav"),
    ("empty", "empty file", lambda d: _put(d / "e.wav", b"")),
    ("text", "not a readable audio file", lambda d: _put(d / "t.wav", b"hi\n" * 99)),
    ("random", "not a readable audio file", lambda d: _put(d / "r.wav", os.urandom(999))),
    (
        "header-only",
        "not a readable audio file",
        lambda d: _put(d / "h.wav", K.write_audio(d / "g.wav").read_bytes()[:30]),
    ),
    ("truncated-wav", "truncated", lambda d: K.cut(K.write_audio(d / "c.wav", subtype="PCM_16"))),
    (
        "truncated-rf64",
        "truncated",
        lambda d: K.cut(K.write_audio(d / "c.rf64", format="RF64", subtype="PCM_16")),
    ),
    (
        "truncated-w64",
        "truncated",
        lambda d: K.cut(K.write_audio(d / "c.w64", format="W64", subtype="PCM_16")),
    ),
    (
        "truncated-aiff",
        "truncated",
        lambda d: K.cut(K.write_audio(d / "c.aiff", format="AIFF", subtype="PCM_16")),
    ),
    ("truncated-au", "truncated", lambda d: K.cut(K.write_audio(d / "c.au", format="AU", subtype="PCM_16"))),
    ("truncated-caf", "c.caf", lambda d: K.cut(K.write_audio(d / "c.caf", format="CAF", subtype="PCM_16"))),
    ("truncated-flac", "c.flac", lambda d: K.cut(K.write_audio(d / "c.flac", 3.0), 0.3)),
    ("truncated-ogg", "c.ogg", lambda d: K.cut(K.write_audio(d / "c.ogg", 3.0), 0.3)),
    ("truncated-mp3", "truncated", lambda d: K.cut(K.write_audio(d / "c.mp3", 3.0, format="MP3"), 0.5)),
    ("inflated-flac-length", "i.flac", lambda d: K.flac_total_samples(K.write_audio(d / "i.flac"), 10**9)),
    ("nan", "NaN or Inf", lambda d: K.float_wav(d / "n.wav", np.nan)),
    ("inf", "NaN or Inf", lambda d: K.float_wav(d / "n.wav", np.inf)),
    (
        "zero-samples",
        "empty audio",
        lambda d: sf.write(d / "z.wav", np.zeros((0, 1), "float32"), 16000, subtype="PCM_16") or d / "z.wav",
    ),
    (
        "token-file-as-audio",
        "not a readable audio file",
        lambda d: K.token_file_with(d / "t.wav", _KIT[0].codec, 1),
    ),
    (
        "broken-symlink",
        "broken symbolic link",
        lambda d: os.symlink(d / "gone.wav", d / "l.wav") or d / "l.wav",
    ),
    ("fifo", "not a regular file", lambda d: os.mkfifo(d / "p.wav") or d / "p.wav"),
    ("device", "not a regular file", lambda d: Path("/dev/null")),
]:
    audio_case(_name, _frag, _build)

_KIT: list[K.Kit] = []

for _name, _extra, _frag in [
    ("codebooks-0", ["--num-codebooks", "0"], "--num-codebooks 0 is out of range"),
    ("codebooks-99", ["--num-codebooks", "99"], "1..4"),
    ("codebooks-text", ["--num-codebooks", "x"], "invalid int value"),
    ("block-0", ["--block-seconds", "0"], "expected a positive number"),
    ("block-negative", ["--block-seconds", "-1"], "expected a positive number"),
    ("block-nan", ["--block-seconds", "nan"], "expected a positive number"),
    ("block-inf", ["--block-seconds", "inf"], "expected a positive number"),
    ("rate-with-file", ["--sample-rate", "8000"], "raw PCM on stdin"),
    ("channels-with-file", ["--channels", "2"], "raw PCM on stdin"),
    ("pcm-format", ["--pcm-format", "u8"], "invalid choice"),
    ("unknown-option", ["--frobnicate"], "unrecognized arguments"),
]:

    def _make(d, kit, extra=_extra):
        return enc(kit.wav, d / "x.cdc", *extra), None

    CASES.append(pytest.param(_make, 2, _frag, id=_name))


def _model_dir(d: Path, kit: K.Kit, damage) -> Path:
    m = d / "m"
    m.mkdir()
    for f in kit.model.iterdir():
        (m / f.name).write_bytes(f.read_bytes())
    damage(m)
    return m


for _name, _damage, _frag in [
    ("model-no-weights", lambda m: (m / "model.safetensors").unlink(), "model.safetensors"),
    ("model-bad-weights", lambda m: (m / "model.safetensors").write_bytes(b"junk" * 9), "corrupt weights"),
    ("model-cut-weights", lambda m: K.cut(m / "model.safetensors", 0.5), "model.safetensors"),
    ("model-bad-config", lambda m: (m / "config.json").write_text("{"), "not valid JSON"),
    (
        "model-config-version",
        lambda m: (m / "config.json").write_text('{"format_version": 9, "config": {}}'),
        "format_version 9",
    ),
    (
        "model-config-key",
        lambda m: (m / "config.json").write_text('{"format_version": 1, "config": {"x": 1}}'),
        "unknown config key",
    ),
    ("model-no-config", lambda m: (m / "config.json").unlink(), "no config.json"),
]:

    def _make(d, kit, damage=_damage):
        return ["encode", kit.wav, "-o", d / "x.cdc", "--model", _model_dir(d, kit, damage)], None

    CASES.append(pytest.param(_make, 2, _frag, id=_name))


@case("model-missing-dir", 2, "nowhere")
def _(d, kit):
    return ["encode", kit.wav, "-o", d / "x.cdc", "--model", d / "nowhere"], None


@case("model-unknown-name", 2, "no_such_model")
def _(d, kit):
    return ["encode", kit.wav, "-o", d / "x.cdc", "--model", "no_such_model"], None


@case("output-empty-name", 2, "empty output name")
def _(d, kit):
    return enc(kit.wav, ""), None


@case("output-audio-name", 2, "encode writes tokens")
def _(d, kit):
    return enc(kit.wav, d / "x.wav"), None


@case("output-exists", 2, "already exists")
def _(d, kit):
    (d / "x.cdc").write_text("mine")
    return enc(kit.wav, d / "x.cdc"), None


@case("output-is-input", 2, "replace the input")
def _(d, kit):
    (d / "a.cdc").write_bytes(kit.wav.read_bytes())
    return enc(d / "a.cdc", d / "a.cdc", "--force"), None


@case("output-under-a-file", 2, "is a file, not a folder")
def _(d, kit):
    (d / "f").write_text("x")
    return enc(kit.wav, d / "f" / "sub" / "x.cdc"), None


@case("output-new-folder-then-failure", 2, "out of range")
def _(d, kit):
    return enc(kit.wav, d / "new" / "deeper" / "x.cdc", "--num-codebooks", "13"), None


@case("folder-without-audio", 2, "no input files")
def _(d, kit):
    (d / "in").mkdir()
    (d / "in" / "notes.txt").write_text("x")
    return enc(d / "in", d / "out"), None


@case("folder-to-stdout", 2, "cannot be written to stdout")
def _(d, kit):
    (d / "in").mkdir()
    return enc(d / "in", "-"), None


@case("folder-output-is-file", 2, "not a folder")
def _(d, kit):
    (d / "in").mkdir()
    K.write_audio(d / "in" / "a.wav")
    (d / "out").write_text("x")
    return enc(d / "in", d / "out"), None


for _name, _data, _extra, _frag in [
    ("stdin-empty", b"", [], "<stdin>: empty input"),
    ("stdin-stray-bytes", b"\x01\x02\x03", [], "stray bytes"),
    ("stdin-odd-stereo", K.pcm16(100)[:-2], ["--channels", "2"], "stray bytes"),
    ("stdin-nan", K.f32([0.1, float("nan")]), ["--pcm-format", "f32le"], "NaN"),
    ("stdin-inf", K.f32([float("inf")]), ["--pcm-format", "f32le"], "NaN"),
    ("stdin-rate-0", K.pcm16(), ["--sample-rate", "0"], "expected a positive integer"),
    ("stdin-channels-0", K.pcm16(), ["--channels", "0"], "expected a positive integer"),
    ("stdin-rate-text", K.pcm16(), ["--sample-rate", "fast"], "expected a positive integer"),
]:

    def _make(d, kit, data=_data, extra=_extra):
        return enc("-", d / "x.cdc", *extra), data

    CASES.append(pytest.param(_make, 2, _frag, id=_name))


@pytest.fixture(scope="module")
def kit(tmp_path_factory, debug_codec, noncausal_codec) -> K.Kit:
    made = K.make_kit(tmp_path_factory.mktemp("kit"), debug_codec, noncausal_codec)
    K_MODEL[:] = [made.model]
    _KIT[:] = [made]
    return made


@pytest.mark.parametrize(("make", "status", "fragment"), CASES)
def test_bad_encode_input(tmp_path, kit, make, status, fragment, capfdbinary, monkeypatch) -> None:
    K.check_bad_case(tmp_path, kit, make, status, fragment, capfdbinary, monkeypatch)
