"""Other codecs' weights behind the tokenizer API: the model's own codes and audio, lengths,
rates, leading codebooks, fingerprints and refusals, for every backend on a tiny random model."""

from __future__ import annotations

import pytest
import torch

from codec import Codec, Codes, backends
from codec.backends.base import Backend
from codec.checkpoint import weights_fingerprint
from codec.pipeline.tokenio import TokenFileError, TokenSource, check_header
from codec.tokenfile import read_codes, write_codes
from tests.backends.tiny import KINDS
from tests.conftest import speech_like


def own_codes(kind: str, b: Backend, x: torch.Tensor) -> torch.Tensor:
    """What the model's own library gives for mono ``x [T]`` (whole frames), as ``[K, F]``."""
    m, x = b.torch_module(), x[None, None]
    if kind == "encodec":
        return m.encode(x, bandwidth=max(m.config.target_bandwidths)).audio_codes[0, 0]
    if kind == "dac":
        return m.encode(x).audio_codes[0]
    if kind == "mimi":
        return m.encode(x).audio_codes[0]
    if kind == "snac":  # levels [1, steps_i] -> one frame holds 1, 2, 4 codes of levels 0, 1, 2
        levels = m.encode(x)
        frames = x.shape[-1] // b.hop_length
        rows = [lv[0, : frames * n].reshape(frames, n).T for lv, n in zip(levels, b.per_frame, strict=True)]
        return torch.cat(rows)
    return m.encode(x, n_q=b.total_codebooks)[:, 0]  # speechtokenizer: [K, 1, F]


def own_audio(kind: str, b: Backend, codes: torch.Tensor) -> torch.Tensor:
    """What the model's own library decodes ``codes [1, K, F]`` (all codebooks) to, ``[T]``."""
    m = b.torch_module()
    if kind == "encodec":
        return m.decode(codes[None], [None]).audio_values[0, 0]
    if kind == "dac":
        return m.decode(audio_codes=codes).audio_values[0]
    if kind == "mimi":
        return m.decode(codes).audio_values[0, 0]
    if kind == "snac":
        frames = codes.shape[-1]
        levels, row = [], 0
        for n in b.per_frame:
            levels.append(codes[:, row : row + n].transpose(1, 2).reshape(1, frames * n))
            row += n
        torch.manual_seed(0)  # its noise blocks, seeded as the backend seeds them
        return m.decode(levels)[0, 0]
    return m.decode(codes.transpose(0, 1))[0, 0]


def test_spec_grammar() -> None:
    assert backends.parse("dac") == ("dac", "descript/dac_16khz")
    assert backends.parse("DAC:./my_dac") == ("dac", "./my_dac")
    assert backends.parse("mimi:") == ("mimi", "kyutai/mimi")
    assert backends.is_spec("encodec:facebook/encodec_24khz") and backends.is_spec("snac")
    assert not backends.is_spec("speech_16k") and not backends.is_spec("models/my_codec")
    with pytest.raises(backends.BackendError, match="unknown model kind 'vorbis'"):
        backends.parse("vorbis:x")
    with pytest.raises(backends.BackendError, match=r"Codec\.from_pretrained"):
        backends.load("ours:speech_16k")
    assert Codec.from_pretrained("ours:").fingerprint == Codec.from_pretrained().fingerprint
    named = Codec.from_pretrained("ours:speech_16k")
    assert named.fingerprint == Codec.from_pretrained("speech_16k").fingerprint


@pytest.mark.parametrize("kind", KINDS)
def test_codes_and_audio_are_the_models_own(kind: str, loaded) -> None:
    b = loaded[kind]
    assert isinstance(b, Backend) and b.kind == kind and not b.batch_invariant
    assert b.fingerprint == weights_fingerprint(b.torch_module().state_dict())
    assert b.name.startswith(f"{kind}:") and "/" not in b.name
    x = speech_like(7 * b.hop_length, b.sample_rate)[0]
    codes = b.encode(x, b.sample_rate)
    want = own_codes(kind, b, x)
    assert codes.codes.shape == (1, b.total_codebooks, 7) and torch.equal(codes.codes[0], want)
    assert codes.fingerprint == b.fingerprint and codes.model == b.name
    assert len(codes.codes.unique()) > 3  # the tiny model's codes are not all one entry
    audio = b.decode(codes)
    assert audio.shape == (1, 1, x.shape[-1])
    ref = own_audio(kind, b, codes.codes)[: x.shape[-1]]  # DAC's decoder gives a few samples less
    assert torch.allclose(audio[0, 0, : ref.shape[-1]], ref, atol=1e-5)
    assert x.shape[-1] - ref.shape[-1] < b.hop_length and not audio[0, 0, ref.shape[-1] :].any()


@pytest.mark.parametrize("kind", KINDS)
def test_lengths_rates_channels_and_leading_codebooks(kind: str, loaded) -> None:
    b = loaded[kind]
    clips = [speech_like(16000, seed=1, channels=2), speech_like(5000, seed=2, channels=2)]  # 16 kHz in
    codes = b.encode(clips, 16000)
    lengths = [-(-n * b.sample_rate // 16000) for n in (16000, 5000)]
    assert codes.lengths.tolist() == lengths and codes.channels == 2
    frames = [-(-n // b.hop_length) for n in lengths]
    assert codes.codes.shape == (4, b.total_codebooks, max(frames)) and codes.frame_lengths.tolist() == frames
    audio = b.decode(codes)
    assert audio.shape == (2, 2, lengths[0]) and not audio[1, :, lengths[1] :].any()
    back = b.decode(codes, sample_rate=16000)
    assert back.shape == (2, 2, 16000) and not back[1, :, 5000:].any()
    k = b.codebook_counts()[0]
    fewer = b.encode(clips, 16000, num_codebooks=k)
    assert torch.equal(fewer.codes, codes.codes[:, :k])  # leading codebooks: a lower bitrate
    assert b.decode(fewer).shape == audio.shape
    assert b.bitrate(k) == pytest.approx(b.frame_rate * k * torch.log2(torch.tensor(b.codebook_size)).item())
    plain = b.decode(codes.codes[:2, :, :3])  # what an LM generates: [B, K, F], whole frames
    assert plain.shape == (2, 1, 3 * b.hop_length)


def test_codes_are_refused_across_backends(loaded, tmp_path) -> None:
    dac, encodec = loaded["dac"], loaded["encodec"]
    x = speech_like(4000)[0]
    codes = dac.encode(x, 16000)
    with pytest.raises(ValueError, match=r"made by model 'dac:.*not by the loaded model 'encodec:"):
        encodec.decode(codes)
    write_codes(tmp_path / "dac.cdc", codes)
    assert read_codes(tmp_path / "dac.cdc") == codes  # the fingerprint travels in the file
    with TokenSource(tmp_path / "dac.cdc") as src, pytest.raises(TokenFileError, match="made by model 'dac:"):
        check_header(encodec, src.header, "dac.cdc")
    with TokenSource(tmp_path / "dac.cdc") as src:
        check_header(dac, src.header, "dac.cdc")


def test_the_same_architecture_with_other_weights_is_another_model(loaded, tmp_path) -> None:
    from tests.backends.tiny import tiny_transformers_model

    model = tiny_transformers_model("dac")
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    model.save_pretrained(tmp_path / "dac")
    other = Codec.from_pretrained(f"dac:{tmp_path / 'dac'}")
    assert other.fingerprint != loaded["dac"].fingerprint and other.name == loaded["dac"].name
    codes = loaded["dac"].encode(speech_like(4000)[0], 16000)
    with pytest.raises(ValueError, match="made by model"):
        other.decode(codes)


@pytest.mark.parametrize("kind", ["dac", "snac"])
def test_bad_codebook_counts_are_refused(kind: str, loaded) -> None:
    b = loaded[kind]
    with pytest.raises(ValueError, match="num_codebooks must be in"):
        b.encode(speech_like(4000)[0], 16000, num_codebooks=b.total_codebooks + 1)
    if kind == "snac":  # whole levels only: 1, 3, 7
        assert b.codebook_counts() == (1, 3, 7)
        with pytest.raises(ValueError, match="1, 3, 7"):
            b.encode(speech_like(4000)[0], 16000, num_codebooks=2)
        with pytest.raises(ValueError, match="decodes 1, 3, 7"):
            b.decode(torch.zeros(1, 2, 3, dtype=torch.long))


def test_a_codes_object_keeps_its_own_type(loaded) -> None:
    codes = loaded["mimi"].encode(speech_like(8000)[0], 16000)
    assert isinstance(codes, Codes) and codes.sample_rate == 24000 and codes.original_sample_rate == 16000
