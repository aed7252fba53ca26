"""File-level encode/decode through the streaming path: no seams, exact lengths, bounded reads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from codec import Codec
from codec.audio import AudioError
from codec.pipeline import decode_file, decode_to_file, encode_file
from codec.pipeline.coders import AudioEncoder, CodesDecoder, chunk_frames
from codec.pipeline.pcm import read_pcm, to_pcm
from codec.pipeline.resample import BlockResampler
from codec.streaming import Stream
from codec.tokenfile import TokenFileError, write_codes
from tests.conftest import speech_like


def _write(path: Path, wav: torch.Tensor, sr: int, subtype: str = "FLOAT") -> Path:
    sf.write(path, wav.T.numpy(), sr, subtype=subtype)
    return path


def _blocks(x: torch.Tensor, seed: int, high: int = 5000) -> list[torch.Tensor]:
    rng, out, i = np.random.default_rng(seed), [], 0
    while i < x.shape[-1]:
        n = int(rng.integers(1, high))
        out.append(x[:, i : i + n])
        i += n
    return out


@pytest.mark.parametrize(
    ("orig", "new", "n"),
    [
        (44100, 16000, 100_003),
        (16000, 44100, 20_001),
        (48000, 16000, 30_000),
        (22050, 16000, 7),
        (8000, 24000, 999),
    ],
)
def test_block_resampler_matches_whole_signal(orig: int, new: int, n: int) -> None:
    x = torch.randn(2, n, generator=torch.Generator().manual_seed(n))
    r = BlockResampler(orig, new, channels=2)
    y = torch.cat([r.push(b) for b in _blocks(x, seed=n)] + [r.finish()], dim=-1)
    whole = AF.resample(x, orig, new)
    assert y.shape == whole.shape == (2, -(-n * new // orig))
    torch.testing.assert_close(y, whole, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> tuple[Path, torch.Tensor]:
    """Two and a half minutes of 16 kHz speech-like audio (offline encoding still fits)."""
    wav = speech_like(16000 * 150 + 77, seed=5)
    return _write(tmp_path_factory.mktemp("long") / "long.wav", wav, 16000), wav


def test_encode_file_equals_offline_on_a_long_file(long_file, debug_codec: Codec, monkeypatch) -> None:
    path, wav = long_file
    calls: list[int] = []
    encode = Stream.encode
    monkeypatch.setattr(Stream, "encode", lambda self, x: calls.append(x.shape[-1]) or encode(self, x))
    codes = encode_file(debug_codec, path, block_seconds=7.3)
    offline = debug_codec.encode(wav[None], 16000)
    assert torch.equal(codes.codes, offline.codes)  # bit-exact: no seams between blocks
    assert codes.lengths.tolist() == offline.lengths.tolist() == [wav.shape[-1]]
    assert codes.fingerprint == offline.fingerprint != "" and codes.original_sample_rate == 16000
    # Bounded: the model never sees more than one chunk, a whole multiple of 16 frames.
    step = chunk_frames(debug_codec, 7.3) * debug_codec.hop_length
    assert step % (16 * debug_codec.hop_length) == 0 and max(calls) == step and len(calls) > 20


def test_decode_file_equals_offline_and_writes_progressively(tmp_path: Path, long_file, debug_codec) -> None:
    _, wav = long_file
    offline = debug_codec.encode(wav[None], 16000)
    write_codes(tmp_path / "t.cdc", offline)
    decoded = decode_file(debug_codec, tmp_path / "t.cdc", tmp_path / "out.wav")
    out, sr = decoded  # an Audio result unpacks like a pair
    assert decoded.wav is out and decoded.sample_rate == sr and decoded.duration == wav.shape[-1] / 16000
    want = debug_codec.decode(offline)[0]
    assert sr == 16000 and out.shape == want.shape == (1, wav.shape[-1])
    torch.testing.assert_close(out, want, rtol=0, atol=1e-5)
    written, file_sr = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert file_sr == 16000 and written.shape == (wav.shape[-1], 1)
    assert np.abs(written[:, 0] - want[0].clamp(-1, 1).numpy()).max() < 1e-4  # 16-bit PCM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav", "t.cdc"]  # no temp file left


@pytest.mark.parametrize("model", ["debug_codec", "noncausal_codec"])
def test_other_rate_and_channels_are_restored(tmp_path: Path, request, model: str) -> None:
    codec: Codec = request.getfixturevalue(model)
    wav = speech_like(44100 * 3 + 11, 44100, seed=2, channels=2)
    path = _write(tmp_path / "in.flac", wav, 44100, subtype="PCM_24")
    read = torch.from_numpy(sf.read(path, dtype="float32", always_2d=True)[0].T.copy())
    codes = encode_file(codec, path, num_codebooks=3, block_seconds=0.5)
    offline = codec.encode(read[None], 44100, num_codebooks=3)
    assert codes.codes.shape == offline.codes.shape == (2, 3, offline.num_frames)
    # Block resampling matches whole-file resampling to float precision, so codes agree.
    assert (codes.codes == offline.codes).float().mean() > 0.99
    assert codes.original_lengths.tolist() == [44100 * 3 + 11] and codes.lengths.tolist() == [48004]
    write_codes(tmp_path / "t.cdc", offline)
    out, sr = decode_file(codec, tmp_path / "t.cdc")
    want = codec.decode(offline, sample_rate=44100)[0]
    assert sr == 44100 and out.shape == want.shape == (2, 44100 * 3 + 11)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-5)
    result = decode_to_file(codec, tmp_path / "t.cdc", tmp_path / "o.flac", sample_rate=16000)
    assert result.num_samples == 48004 and sf.info(tmp_path / "o.flac").samplerate == 16000
    assert sf.info(tmp_path / "o.flac").frames == 48004 and sf.info(tmp_path / "o.flac").channels == 2


def test_short_inputs_and_single_samples(tmp_path: Path, debug_codec: Codec) -> None:
    for n in (1, 159, 160, 161, 2567):
        wav = speech_like(n, seed=n)
        codes = encode_file(debug_codec, _write(tmp_path / f"{n}.wav", wav, 16000))
        assert torch.equal(codes.codes, debug_codec.encode(wav[None], 16000).codes)
        write_codes(tmp_path / f"{n}.cdc", codes)
        out, _ = decode_file(debug_codec, tmp_path / f"{n}.cdc")
        torch.testing.assert_close(out, debug_codec.decode(codes)[0], rtol=0, atol=1e-5)


def test_bad_inputs_raise_audio_errors(tmp_path: Path, debug_codec: Codec) -> None:
    good = _write(tmp_path / "good.wav", speech_like(16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[:20000])
    with pytest.raises(AudioError, match="truncated WAV"):
        encode_file(debug_codec, cut)
    nan = speech_like(16000 * 3)
    nan[0, 40000] = float("nan")
    with pytest.raises(AudioError, match="NaN"):
        encode_file(debug_codec, _write(tmp_path / "nan.wav", nan, 16000), block_seconds=1.0)
    with pytest.raises(AudioError, match="no such file"):
        encode_file(debug_codec, tmp_path / "missing.wav")


def test_decode_refuses_tokens_of_another_model(tmp_path: Path, debug_codec, noncausal_codec) -> None:
    codes = noncausal_codec.encode(speech_like(4000)[None], 16000)
    write_codes(tmp_path / "t.cdc", codes)
    with pytest.raises(TokenFileError, match="debug-noncausal"):
        decode_file(debug_codec, tmp_path / "t.cdc")


def test_live_streaming_in_tiny_pieces(debug_codec: Codec) -> None:
    """The pipe path: arbitrary small pushes, output released early, same result at the end."""
    wav = speech_like(16000 * 2 + 5, 22050, seed=9)
    enc = AudioEncoder(debug_codec, 1, 22050, chunk_frames=None)
    codes = torch.cat([enc.push(b) for b in _blocks(wav, 1, high=700)] + [enc.finish()], dim=-1)
    offline = debug_codec.encode(wav[None], 22050)
    assert codes.shape == offline.codes.shape and (codes == offline.codes).float().mean() > 0.98
    assert enc.original_num_samples == wav.shape[-1] and enc.num_samples == int(offline.lengths[0])
    dec = CodesDecoder(debug_codec, 1, 22050)
    parts, released_early = [], 0
    for i in range(0, codes.shape[-1], 3):
        parts.append(dec.push(offline.codes[..., i : i + 3]))
        released_early += parts[-1].shape[-1]
    parts.append(dec.finish(int(offline.lengths[0]), wav.shape[-1]))
    out = torch.cat(parts, dim=-1)
    want = debug_codec.decode(offline, sample_rate=22050)[0]
    assert out.shape == want.shape and released_early > 0.9 * wav.shape[-1]
    torch.testing.assert_close(out, want, rtol=0, atol=1e-5)


def test_pcm_round_trip_and_stray_bytes() -> None:
    wav = torch.tensor([[0.0, 0.5, -1.0, 2.0], [0.25, -0.25, 1.0, -2.0]])
    data = to_pcm(wav, "s16le")
    assert len(data) == 16 and np.frombuffer(data, "<i2").tolist()[:4] == [0, 8192, 16384, -8192]
    back = torch.cat(list(read_pcm(io.BytesIO(data), 2, "s16le", block_bytes=3)), dim=-1)
    torch.testing.assert_close(back, wav.clamp(-1, 1), atol=1 / 16000, rtol=0)
    f32 = torch.cat(list(read_pcm(io.BytesIO(to_pcm(wav, "f32le")), 2, "f32le")), dim=-1)
    assert torch.equal(f32, wav.clamp(-1, 1))
    with pytest.raises(AudioError, match="stray bytes"):
        list(read_pcm(io.BytesIO(data + b"\1"), 2))
