"""Bad input to ``codec decode``, ``info``, ``demo``, ``export`` and ``train``: one line, the right
status, no traceback, and the case's folder holds exactly what the case put there afterwards."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import pytest

from tests.faults import kit as K

CASES: list = []
_KIT: list[K.Kit] = []


def dec(src, out, *extra) -> list:
    return ["decode", src, "-o", out, *extra, "--model", _KIT[0].model]


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def token_case(name: str, fragment: str, damage, suffix: str = ".cdc", source: str = "cdc") -> None:
    """``damage(bytes) -> bytes`` applied to the kit's token file (or stream), then decoded."""

    def make(d: Path, kit: K.Kit):
        good = (kit.cdc if source == "cdc" else kit.cdcs).read_bytes()
        return dec(_put(d / f"t{suffix}", damage(good)), d / "x.wav"), None

    CASES.append(pytest.param(make, 2, fragment, id=name))


def _h(edit):
    return lambda b: K.edit_header(b, edit)


for _name, _frag, _damage in [
    ("empty", "empty file", lambda b: b""),
    ("random", "not a codec token file", lambda b: os.urandom(300)),
    ("wav-given", "looks like a WAV", lambda b: b"RIFF" + b[4:]),
    ("flac-given", "looks like a FLAC", lambda b: b"fLaC" + b[4:]),
    ("ogg-given", "looks like an Ogg", lambda b: b"OggS" + b[4:]),
    ("mp3-given", "looks like an MP3", lambda b: b"ID3" + b[3:]),
    ("magic-only", "truncated token file", lambda b: b[:5]),
    ("truncated-header", "truncated", lambda b: b[:20]),
    ("truncated-payload", "truncated", lambda b: b[:-7]),
    ("trailing-bytes", "trailing", lambda b: b + b"\0\0"),
    ("crc-flip", "CRC32", lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:]),
    ("version-newer", "newer than this library", lambda b: K.resign(b[:8] + struct.pack("<H", 3) + b[10:])),
    ("version-damaged", "corrupt token file (CRC32", lambda b: b[:8] + struct.pack("<H", 3) + b[10:]),
    ("version-0", "corrupt", lambda b: K.resign(b[:8] + struct.pack("<H", 0) + b[10:])),
    ("header-length-huge", "corrupt", lambda b: b[:10] + struct.pack("<I", 10**8) + b[14:]),
    ("header-not-json", "not valid JSON", lambda b: K.edit_header(b, lambda h: b"{nope")),
    ("header-not-object", "not a JSON object", lambda b: K.edit_header(b, lambda h: b"[1, 2]")),
    ("header-missing-field", "fingerprint", _h(lambda h: h.pop("fingerprint"))),
    ("header-string-number", "channels", _h(lambda h: h.update(channels="1"))),
    ("header-bool", "sample_rate", _h(lambda h: h.update(sample_rate=True))),
    ("header-float", "hop_length", _h(lambda h: h.update(hop_length=160.0))),
    ("header-negative", "channels", _h(lambda h: h.update(channels=-1))),
    ("codebook-size-1", "codebook_size", _h(lambda h: h.update(codebook_size=1))),
    ("bits-mismatch", "bits_per_code", _h(lambda h: h.update(bits_per_code=3))),
    ("frames-mismatch", "num_frames", _h(lambda h: h.update(num_frames=h["num_frames"] - 1))),
    ("lengths-disagree", "original_num_samples", _h(lambda h: h.update(original_num_samples=5))),
    ("rate-huge", "out of range", _h(lambda h: h.update(original_sample_rate=10**9))),
    (
        "model-rate-mismatch",
        "sample_rate 8000",
        _h(lambda h: h.update(sample_rate=8000, frame_rate=50.0, original_sample_rate=8000)),
    ),
    ("hop-mismatch", "t.cdc", _h(lambda h: h.update(hop_length=320, num_frames=-(-h["num_samples"] // 320)))),
    ("model-path", "not a model name", _h(lambda h: h.update(model="/etc/codec-model"))),
    ("model-dotdot", "not a model name", _h(lambda h: h.update(model="../other_model"))),
    (
        "weights-of-another-model",
        "(weights 000000000000), not by the loaded model",
        _h(lambda h: h.update(fingerprint="0" * 64)),
    ),
]:
    token_case(_name, _frag, _damage)


def _sd(damage):
    """Damage a token stream given (bytes, offset of its first packet)."""
    return lambda b: damage(b, K.stream_header_end(b))


for _name, _frag, _damage in [
    ("stream-header-cut", "truncated token stream", _sd(lambda b, h: b[: h - 2])),
    ("stream-no-end", "truncated token stream", _sd(lambda b, h: b[:-21])),
    ("stream-cut-in-packet", "truncated token stream", _sd(lambda b, h: b[: h + 12])),
    ("stream-packet-crc", "packet CRC32", _sd(lambda b, h: b[: h + 9] + bytes([b[h + 9] ^ 1]) + b[h + 10 :])),
    ("stream-header-crc", "CRC32", _sd(lambda b, h: b[:20] + bytes([b[20] ^ 1]) + b[21:])),
    ("stream-unknown-packet", "unknown packet", _sd(lambda b, h: b[:h] + b"X" + b[h + 1 :])),
    ("stream-zero-frames", "packet of 0 frames", _sd(lambda b, h: b[:h] + b"F" + bytes(4) + b[h + 5 :])),
    ("stream-concatenated", "data after the end packet", lambda b: b + b),
    ("stream-trailing", "data after the end packet", lambda b: b + b"garbage"),
    ("stream-version-damaged", "CRC32", lambda b: b[:8] + struct.pack("<H", 4) + b[10:]),
]:
    token_case(_name, _frag, _damage, ".cdcs", "cdcs")


def _stream_case(name: str, fragment: str, end) -> None:
    def make(d: Path, kit: K.Kit):
        from codec.tokenfile import read_codes

        codes = read_codes(kit.cdc)
        return dec(_put(d / "t.cdcs", K.stream_bytes(codes, end(codes))), d / "x.wav"), None

    CASES.append(pytest.param(make, 2, fragment, id=name))


# Length errors found only at the end of a stream still name the file.
_stream_case("stream-end-zero", "t.cdcs: no audio", lambda c: (0, 0))
_stream_case("stream-end-inconsistent", "t.cdcs: inconsistent lengths", lambda c: (int(c.lengths[0]), 5))
_stream_case("stream-end-too-long", "t.cdcs: length 1000000 does not fit", lambda c: (10**6, 10**6))
_stream_case("stream-end-too-short", "t.cdcs: length 1 does not fit", lambda c: (1, 1))


def case(name: str, status: int, fragment: str):
    def register(make):
        CASES.append(pytest.param(make, status, fragment, id=name))
        return make

    return register


@case("too-many-codebooks", 2, "num_codebooks 9")
def _(d, kit):
    return dec(K.token_file_with(d / "t.cdc", kit.codec, 1, num_codebooks=9), d / "x.wav"), None


for _name, _extra, _out, _frag in [
    ("ogg-256k", ["--sample-rate", "256000"], "x.ogg", "OGG cannot hold 256000 Hz"),
    ("flac-700k", ["--sample-rate", "700000"], "x.flac", "FLAC cannot hold 700000 Hz"),
    ("unsupported-extension", [], "x.mp3", "unsupported output format"),
    ("no-extension", [], "x", "unsupported output format"),
    ("rate-0", ["--sample-rate", "0"], "x.wav", "expected a positive integer"),
    ("format-choice", ["--format", "mp3"], "x.wav", "invalid choice"),
    ("output-empty", [], "", "empty output name"),
]:

    def _make(d, kit, extra=_extra, out=_out):
        return dec(kit.cdc, d / out if out else "", *extra), None

    CASES.append(pytest.param(_make, 2, _frag, id=_name))


@case("channels-9-to-flac", 2, "FLAC cannot hold 9 channels")
def _(d, kit):
    return dec(K.token_file_with(d / "t.cdc", kit.codec, 9), d / "x.flac"), None


@case("channels-4096-to-wav", 2, "WAV cannot hold 4096 channels")
def _(d, kit):
    return dec(K.token_file_with(d / "t.cdc", kit.codec, 4096, frames=1), d / "x.wav"), None


@case("output-exists", 2, "already exists")
def _(d, kit):
    return dec(kit.cdc, _put(d / "x.wav", b"mine")), None


@case("input-missing", 2, "no such file")
def _(d, kit):
    return dec(d / "none.cdc", d / "x.wav"), None


@case("input-broken-symlink", 2, "broken symbolic link")
def _(d, kit):
    os.symlink(d / "gone.cdc", d / "l.cdc")
    return dec(d / "l.cdc", d / "x.wav"), None


@case("input-device", 2, "/dev/null")
def _(d, kit):
    return dec("/dev/null", d / "x.wav"), None


@case("input-fifo-with-junk", 2, "not a codec token stream")
def _(d, kit):
    fifo = d / "p.cdcs"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as f:
            f.write(b"this is no token stream")

    threading.Thread(target=feed, daemon=True).start()
    return dec(fifo, d / "x.wav"), None


@case("stdin-empty", 2, "<stdin>: empty input")
def _(d, kit):
    return dec("-", d / "x.wav"), b""


@case("stdin-token-file", 2, "this is a codec token file, expected a token stream")
def _(d, kit):
    return dec("-", d / "x.wav"), kit.cdc.read_bytes()


@case("unbundled-model-name", 2, "does not bundle")
def _(d, kit):
    return ["decode", kit.cdc, "-o", d / "x.wav"], None


@case("model-name-that-is-a-folder-here", 2, "does not bundle")
def _(d, kit):
    # A header naming "other_model" while that folder sits in the working directory: a name is
    # only looked up among the bundled models, never as a path.
    data = K.edit_header(kit.cdc.read_bytes(), lambda h: h.update(model="other_model"))
    os.symlink(kit.other_model, d / "other_model")  # the test runs in d
    return ["decode", _put(d / "t.cdc", data), "-o", d / "x.wav"], None


for _name, _argv, _frag in [
    ("info-missing", lambda d, k: ["info", d / "none.cdc"], "no such file"),
    ("info-junk", lambda d, k: ["info", _put(d / "j.bin", b"junk" * 9)], "not a model directory"),
    ("info-fifo", lambda d, k: ["info", os.mkfifo(d / "p") or d / "p"], "not a regular file"),
    ("info-device", lambda d, k: ["info", "/dev/null"], "not a regular file"),
    ("info-truncated-token", lambda d, k: ["info", _put(d / "t.cdc", k.cdc.read_bytes()[:-9])], "truncated"),
    (
        "info-truncated-stream",
        lambda d, k: ["info", _put(d / "t.cdcs", k.cdcs.read_bytes()[:-21])],
        "truncated",
    ),
    (
        "info-truncated-wav",
        lambda d, k: ["info", K.cut(K.write_audio(d / "c.wav", subtype="PCM_16"))],
        "truncated",
    ),
    ("info-unknown-name", lambda d, k: ["info", "no_such_model"], "no such file, directory or bundled model"),
    ("info-bad-model", lambda d, k: ["info", _put_dir(d / "m")], "no config.json"),
    (
        "demo-output-is-input",
        lambda d, k: ["demo", "--model", k.model, "--input", k.wav, "-o", k.wav, "--force"],
        "replace the input",
    ),
    (
        "demo-output-exists",
        lambda d, k: ["demo", "--model", k.model, "--input", k.wav, "-o", _put(d / "o.wav", b"mine")],
        "already exists",
    ),
    (
        "demo-output-format",
        lambda d, k: ["demo", "--model", k.model, "--input", k.wav, "-o", d / "o.mp3"],
        "unsupported output format",
    ),
    (
        "demo-input-missing",
        lambda d, k: ["demo", "--model", k.model, "--input", d / "none.wav"],
        "no such file",
    ),
    (
        "demo-codebooks",
        lambda d, k: ["demo", "--model", k.model, "--input", k.wav, "-n", "99"],
        "between 1 and",
    ),
    ("export-missing", lambda d, k: ["export", d / "none.ckpt", "-o", d / "m"], "no such checkpoint"),
    ("export-junk", lambda d, k: ["export", _put(d / "j.ckpt", b"junk"), "-o", d / "m"], "not a readable"),
    ("train-bad-preset", lambda d, k: ["train", "--config", "no_such_preset"], "no_such_preset"),
    (
        "train-devices",
        lambda d, k: ["train", "--config", "debug", "--devices", "0", "--data", d],
        "--devices",
    ),
]:

    def _make(d, kit, argv=_argv):
        return argv(d, kit), None

    CASES.append(pytest.param(_make, 2, _frag, id=_name))


def _put_dir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def kit(tmp_path_factory, debug_codec, noncausal_codec) -> K.Kit:
    made = K.make_kit(tmp_path_factory.mktemp("kit"), debug_codec, noncausal_codec)
    _KIT[:] = [made]
    return made


@pytest.mark.parametrize(("make", "status", "fragment"), CASES)
def test_bad_decode_input(tmp_path, kit, make, status, fragment, capfdbinary, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    K.check_bad_case(tmp_path, kit, make, status, fragment, capfdbinary, monkeypatch)
