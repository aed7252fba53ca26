"""Edges of the pipeline and the API: folder runs that go on, odd names and lengths, closed pipes,
arguments of the wrong type, a bounded resampling filter."""

from __future__ import annotations

import os
import subprocess

import pytest
import soundfile as sf
import torch

from codec import Codec, Codes
from codec.audio import MAX_RATIO_PRODUCT, AudioError, resample, resample_ratio
from codec.pipeline import encode_file
from codec.pipeline.resample import BlockResampler
from codec.tokenfile import read_codes, write_codes
from codec.tokens import unflatten_tokens
from tests.conftest import speech_like
from tests.faults import kit as K

CLI = K.cli_command()


@pytest.fixture(scope="module")
def kit(tmp_path_factory, debug_codec, noncausal_codec) -> K.Kit:
    return K.make_kit(tmp_path_factory.mktemp("kit"), debug_codec, noncausal_codec)


def test_folder_mode_reports_every_kind_of_failure_and_goes_on(
    tmp_path, kit, capsysbinary, monkeypatch
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.cdc").write_bytes(kit.cdc.read_bytes())
    wrong_rate = K.edit_header(
        kit.cdc.read_bytes(), lambda h: h.update(sample_rate=8000, frame_rate=50.0, original_sample_rate=8000)
    )
    (src / "b.cdc").write_bytes(wrong_rate)
    os.symlink(src / "gone.cdc", src / "c.cdc")  # a dangling link is reported, not skipped
    (src / "d.cdcs").write_bytes(kit.cdcs.read_bytes() * 2)
    (src / "e.cdc").write_bytes(kit.cdc.read_bytes())
    argv = ["decode", src, "-o", tmp_path / "out", "--model", kit.model, "-q"]
    code, _, err = K.run_cli(argv, capsysbinary, monkeypatch)
    err = err.strip().splitlines()
    assert code == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav", "e.wav"]
    assert len(err) == 4 and "3 of 5 files failed" in err[-1]
    assert "b.cdc" in err[0] and "sample_rate 8000" in err[0]
    assert "c.cdc" in err[1] and "broken symbolic link" in err[1]
    assert "d.cdcs" in err[2] and "data after the end packet" in err[2]


def test_skip_existing_redoes_an_incomplete_output(tmp_path, kit, capsysbinary, monkeypatch) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "a.cdc").write_bytes(kit.cdc.read_bytes())
    (src / "b.cdc").write_bytes(kit.cdc.read_bytes())
    argv = ["decode", src, "-o", out, "--model", kit.model, "-q"]
    assert K.run_cli(argv, capsysbinary, monkeypatch)[0] == 0
    kept = (out / "a.wav").stat().st_mtime_ns
    K.cut(out / "b.wav", 0.5)  # left by a run that something else cut short
    (out / ".a.wav.x1y2.codec-tmp.wav").write_bytes(b"half")  # as a SIGKILLed --force run leaves
    (out / ".a.wav.codec-lock").write_bytes(b"")
    assert K.run_cli([*argv, "--skip-existing"], capsysbinary, monkeypatch) == (0, "", "")
    assert (out / "a.wav").stat().st_mtime_ns == kept  # complete: kept
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav"]  # the leftovers are gone
    assert sf.info(out / "b.wav").frames == 32000  # incomplete: decoded again


def test_names_that_are_not_utf8(tmp_path, kit, capsysbinary, monkeypatch) -> None:
    name = os.fsdecode(b"bad\xffbyte")
    src = tmp_path / f"{name}.wav"
    src.write_bytes(kit.wav.read_bytes())
    argv = ["encode", src, "-o", tmp_path / f"{name}.cdc", "--model", kit.model]
    assert K.run_cli(argv, capsysbinary, monkeypatch)[0] == 0
    assert read_codes(tmp_path / f"{name}.cdc").num_frames == 200
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / f"{name}.wav").write_bytes(kit.wav.read_bytes())
    (folder / f"{name}2.wav").write_text("not audio")
    code, _, err = K.run_cli(
        ["encode", folder, "-o", tmp_path / "tok", "--model", kit.model, "-q"], capsysbinary, monkeypatch
    )
    assert code == 2
    assert "bad\\udcffbyte2.wav" in err or "bad\\xffbyte2.wav" in err
    assert [p.name for p in (tmp_path / "tok").iterdir()] == [f"{name}.cdc"]


def test_a_flac_without_a_length_codes_like_one_with_it(tmp_path, kit, capsysbinary, monkeypatch) -> None:
    """total_samples = 0 means "unknown" in FLAC: a valid file, read to its end."""
    good = K.write_audio(tmp_path / "g.flac", 1.3)
    (tmp_path / "u.flac").write_bytes(good.read_bytes())
    unknown = K.flac_total_samples(tmp_path / "u.flac", 0)
    assert torch.equal(encode_file(kit.codec, unknown).codes, encode_file(kit.codec, good).codes)
    code, out, _ = K.run_cli(["info", unknown, "--json"], capsysbinary, monkeypatch)
    assert code == 0 and '"num_samples": 20800' in out
    code, _, err = K.run_cli(
        ["encode", unknown, "-o", tmp_path / "u.cdc", "--model", kit.model], capsysbinary, monkeypatch
    )
    assert code == 0, err


def test_a_new_output_folder_is_removed_when_the_run_fails(tmp_path, kit, capsysbinary, monkeypatch) -> None:
    cut = tmp_path / "cut.cdcs"
    cut.write_bytes(kit.cdcs.read_bytes()[:-21])  # no end packet: found only after decoding
    out = tmp_path / "new" / "deeper" / "x.wav"
    code, _, err = K.run_cli(["decode", cut, "-o", out, "--model", kit.model], capsysbinary, monkeypatch)
    assert code == 2 and "truncated token stream" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.cdcs"]


@pytest.mark.parametrize(
    ("argv", "redirect", "fragment"),
    [
        (["encode", "-", "-o", "x.cdc"], "<&-", "stdin is closed"),
        (["decode", "-", "-o", "x.wav"], "<&-", "stdin is closed"),
        (["encode", "IN", "-o", "-"], ">&-", "stdout is closed"),
        (["info", "IN"], ">&-", "stdout is closed"),
    ],
)
def test_closed_stdin_or_stdout(tmp_path, kit, argv, redirect, fragment) -> None:
    argv = [str(kit.wav) if a == "IN" else a for a in argv]
    cmd = " ".join([*CLI, *argv, "--model", str(kit.model)] if argv[0] != "info" else [*CLI, *argv])
    run = subprocess.run(["bash", "-c", f"{cmd} {redirect}"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and fragment in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_stream_encode_refuses_integer_and_bool_samples(debug_codec: Codec) -> None:
    stream = debug_codec.stream(1)
    for dtype in (torch.int16, torch.int32, torch.bool):
        with pytest.raises(AudioError, match="float samples"):
            stream.encode(torch.ones(1, 1, 320, dtype=dtype))


@pytest.mark.parametrize("rate", [0, -16000, 8000.5, 44100.0, "16000", True])
def test_decode_sample_rate_must_be_a_positive_integer(debug_codec: Codec, rate) -> None:
    codes = debug_codec.encode(speech_like(800)[None], 16000)
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        debug_codec.decode(codes, sample_rate=rate)


def test_api_arguments_of_the_wrong_kind_are_value_errors(debug_codec: Codec) -> None:
    wav = speech_like(800)[None]
    codes = debug_codec.encode(wav, 16000)
    fields = {f: getattr(codes, f) for f in codes.__dataclass_fields__}
    for change in (
        {"channels": 0},
        {"channels": 1.0},
        {"lengths": [800]},
        {"lengths": torch.tensor([800.0])},
        {"lengths": torch.tensor([True])},
        {"hop_length": 0},
        {"codes": codes.codes[0]},
    ):
        with pytest.raises(ValueError, match="Codes"):
            Codes(**(fields | change))
    for lengths in ([True], [800.0], "800", [[800]]):
        with pytest.raises(AudioError, match="lengths"):
            debug_codec.encode(wav, 16000, lengths=lengths)
    for bad in (2.5, 0, True, "1"):
        with pytest.raises(ValueError, match="positive integer"):
            debug_codec.stream(bad)
    with pytest.raises(ValueError, match="num_codebooks must be a positive integer"):
        unflatten_tokens(torch.zeros(1, 8, dtype=torch.long), 0, 64)


@pytest.mark.parametrize(
    ("orig", "new"),
    [
        (44101, 16000),
        (16000, 44101),
        (96001, 16000),
        (22051, 16000),
        (16000, 48001),
        (9_999_991, 16000),
        (16000, 3),
    ],
)
def test_resampling_filter_is_bounded_whatever_the_rates(orig: int, new: int) -> None:
    o, n = resample_ratio(orig, new)
    assert o * n <= MAX_RATIO_PRODUCT
    assert abs(n / o - new / orig) <= 1e-4 * new / orig or max(orig, new) / min(orig, new) > 1000
    x = torch.sin(2 * torch.pi * 440 * torch.arange(orig // 4) / orig)[None]
    y = resample(x, orig, new)
    assert y.shape[-1] == -(-x.shape[-1] * new // orig)
    r = BlockResampler(orig, new)
    blocks = torch.cat([r.push(b) for b in x.split(997, dim=-1)] + [r.finish()], dim=-1)
    assert blocks.shape == y.shape
    torch.testing.assert_close(blocks, y, rtol=0, atol=1e-5)


def test_exact_ratios_are_kept() -> None:
    assert resample_ratio(44100, 16000) == (441, 160) and resample_ratio(48000, 16000) == (3, 1)


def test_writing_a_path_as_model_name_is_refused(tmp_path, debug_codec: Codec) -> None:
    codes = debug_codec.encode(speech_like(800)[None], 16000)
    for name in ("/abs/model", "../x", "a/b", ".hidden", "~user"):
        with pytest.raises(ValueError, match="not a plain name"):
            write_codes(tmp_path / "x.cdc", Codes(**{**codes.__dict__, "model": name}))
    assert list(tmp_path.iterdir()) == []
