"""The ``codec`` command line on pipes: raw PCM and token streams, live, and their errors."""

from __future__ import annotations

import dataclasses
import io
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.checkpoint import save_model
from codec.cli import main
from codec.tokenfile import (
    STREAM_MAGIC,
    StreamHeader,
    TokenStreamWriter,
    header_from_codes,
    read_codes,
    write_codes,
)
from tests.conftest import speech_like

CLI = [sys.executable, "-m", "codec.cli"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, debug_codec: Codec) -> Path:
    return save_model(debug_codec.model, tmp_path_factory.mktemp("model") / "debug")


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory, noncausal_codec: Codec) -> Path:
    return save_model(noncausal_codec.model, tmp_path_factory.mktemp("model") / "other")


def _stdio(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_pipes_in_process(tmp_path, model_dir, debug_codec, capsysbinary, monkeypatch) -> None:
    wav = speech_like(16000 + 55, seed=4)
    pcm = (wav.T.numpy() * 32767).round().astype("<i2").tobytes()
    _stdio(monkeypatch, pcm)
    assert main(["encode", "-", "-o", "-", "--model", str(model_dir)]) == 0
    stream = capsysbinary.readouterr().out
    assert stream.startswith(STREAM_MAGIC)
    (tmp_path / "s.cdcs").write_bytes(stream)
    _stdio(monkeypatch, stream)
    assert main(["decode", "-", "-o", "-", "--model", str(model_dir)]) == 0
    out = np.frombuffer(capsysbinary.readouterr().out, "<i2")
    assert out.shape == (16000 + 55,)
    # Same result as the file path on the same samples.
    codes = debug_codec.encode(
        torch.from_numpy(np.frombuffer(pcm, "<i2") / 32768.0).float()[None, None], 16000
    )
    want = (debug_codec.decode(codes)[0, 0].clamp(-1, 1) * 32767).round().numpy()
    assert np.abs(out - want).max() <= 1
    # A saved stream decodes like a token file; stdin -> token file works too.
    assert (
        main(["decode", str(tmp_path / "s.cdcs"), "-o", str(tmp_path / "s.wav"), "--model", str(model_dir)])
        == 0
    )
    assert sf.info(tmp_path / "s.wav").frames == 16000 + 55
    _stdio(monkeypatch, pcm)
    assert main(["encode", "-", "-o", str(tmp_path / "p.cdc"), "--model", str(model_dir)]) == 0
    assert torch.equal(read_codes(tmp_path / "p.cdc").codes, codes.codes)


def test_pipes_with_a_model_that_cannot_stream(other_model_dir, capsysbinary, monkeypatch) -> None:
    """A non-causal model still works on pipes: it codes the whole input when it ends."""
    pcm = (speech_like(3001, 8000, channels=2).T.numpy() * 32767).round().astype("<i2").tobytes()
    _stdio(monkeypatch, pcm)
    argv = ["--model", str(other_model_dir), "--sample-rate", "8000", "--channels", "2"]
    assert main(["encode", "-", "-o", "-", *argv]) == 0
    _stdio(monkeypatch, capsysbinary.readouterr().out)
    assert main(["decode", "-", "-o", "-", "--model", str(other_model_dir)]) == 0
    assert len(capsysbinary.readouterr().out) == len(pcm)  # 8 kHz stereo restored


def test_pipe_errors(model_dir, capsysbinary, monkeypatch) -> None:
    for argv, data, fragment in [
        (["encode", "-", "-o", "-"], b"", b"<stdin>: empty input"),
        (["encode", "-", "-o", "-"], b"\x01\x02\x03", b"stray bytes"),
        (
            ["encode", "-", "-o", "-", "--pcm-format", "f32le"],
            np.array([0.1, np.nan], "<f4").tobytes(),
            b"NaN",
        ),
        (["decode", "-", "-o", "-"], b"", b"<stdin>: empty input"),
        (["decode", "-", "-o", "-"], b"RIFF0000WAVEfmt ", b"looks like a WAV"),
        (["encode", "x.wav", "-o", "-", "--channels", "2"], b"", b"raw PCM on stdin"),
        (["encode", "-", "-o", "-", "--block-seconds", "0"], b"", b"expected a positive number"),
    ]:
        _stdio(monkeypatch, data)
        assert main([*argv, "--model", str(model_dir)]) == 2
        err = capsysbinary.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1, err


def _read_exactly(proc: subprocess.Popen, n: int, timeout: float = 60.0) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while len(data) < n and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 1.0)[0]:
            data += os.read(proc.stdout.fileno(), n - len(data))
    return data


def test_decode_pipe_plays_frames_as_they_arrive(model_dir, debug_codec) -> None:
    """Audio for the first packet comes out before the rest of the stream is even written."""
    codes = debug_codec.encode(speech_like(16000)[None], 16000)
    h = header_from_codes(codes)
    header = StreamHeader(**{f.name: getattr(h, f.name) for f in dataclasses.fields(StreamHeader)})
    with subprocess.Popen(
        [*CLI, "decode", "-", "-o", "-", "--model", str(model_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            writer = TokenStreamWriter(proc.stdin, header)
            writer.write(codes.codes[..., :10])
            # 10 frames decoded; the last lookahead samples wait for the next frame.
            first = _read_exactly(proc, 2 * (10 * debug_codec.hop_length - debug_codec.lookahead))
            assert len(first) == 2 * (10 * 160 - 160)
            writer.write(codes.codes[..., 10:])
            writer.close(16000, 16000)
            proc.stdin.close()
            rest = proc.stdout.read()
            assert proc.wait(60) == 0 and len(first) + len(rest) == 2 * 16000
        finally:
            proc.kill()


def test_encode_pipe_sends_packets_as_audio_arrives(model_dir, debug_codec) -> None:
    """Tokens for the first audio come out while stdin is still open."""
    with subprocess.Popen(
        [*CLI, "encode", "-", "-o", "-", "--model", str(model_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            pcm = (speech_like(8000).T.numpy() * 32767).round().astype("<i2").tobytes()
            proc.stdin.write(pcm[:3200])  # 10 frames
            proc.stdin.flush()
            head = _read_exactly(proc, 14)
            assert head[:8] == STREAM_MAGIC
            header_len = int.from_bytes(head[10:14], "little")
            first = _read_exactly(proc, header_len + 4 + 1 + 4)
            assert first[header_len + 4 : header_len + 5] == b"F"  # a frame packet, stdin still open
            proc.stdin.write(pcm[3200:])
            proc.stdin.close()
            assert proc.wait(60) == 0
        finally:
            proc.kill()


def test_closed_stdout_stops_quietly(tmp_path, model_dir, debug_codec) -> None:
    """`codec decode x.cdc -o - | head -c 10`: exit like SIGPIPE (141), no error message."""
    write_codes(tmp_path / "t.cdc", debug_codec.encode(speech_like(16000 * 10)[None], 16000))
    with subprocess.Popen(
        [*CLI, "decode", tmp_path / "t.cdc", "-o", "-", "--model", model_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert len(_read_exactly(proc, 10)) == 10
        proc.stdout.close()
        assert proc.wait(60) == 141 and proc.stderr.read() == b""
