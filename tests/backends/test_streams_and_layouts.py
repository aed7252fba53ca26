"""Streaming (Mimi streams, the others refuse), LM layouts and the step-by-step detokenizer
for every backend, on tiny random models."""

from __future__ import annotations

import pytest
import torch

from codec import Codes
from codec.streaming import StreamingError
from codec.tokens import StepDecoder, TokenLayout, acoustic_delays, staircase_delays
from tests.backends.tiny import KINDS
from tests.conftest import speech_like

OFFLINE = [k for k in KINDS if k != "mimi"]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


@pytest.mark.parametrize("chunks", [[1920], [777], [100, 5000, 3840]])
def test_mimi_streams_equal_offline_in_any_chunking(loaded, chunks: list[int]) -> None:
    b = loaded["mimi"]
    wav = torch.stack(
        [speech_like(b.hop_length * 20 + 500, b.sample_rate, seed=s) for s in (3, 4)]
    )  # [2, 1, T]
    offline = b.encode(wav, b.sample_rate)
    stream, parts, pos = b.stream(batch_size=2), [], 0
    while pos < wav.shape[-1]:
        for n in chunks:
            parts.append(stream.encode(wav[..., pos : pos + n]))
            pos += n
    parts.append(stream.flush().codes)
    assert torch.equal(torch.cat(parts, dim=-1), offline.codes)  # 21 frames, past the sliding window
    audio = b.decode(offline.codes)  # whole frames
    decoder = b.stream(batch_size=2)
    sizes = [1, 3, 2]
    out, f = [], 0
    while f < offline.num_frames:
        out.append(decoder.decode(offline.codes[..., f : f + sizes[len(out) % 3]]))
        f += sizes[(len(out) - 1) % 3]
    streamed = torch.cat(out, dim=-1)
    assert streamed.shape == audio.shape and _relative(streamed, audio) < 1e-5
    assert b.causal and b.lookahead == 0 and decoder.flush().wav.shape[-1] == 0


def test_mimi_through_the_pipeline_equals_the_api(loaded, tmp_path) -> None:
    import soundfile as sf

    from codec.pipeline import decode_file, encode_file

    b = loaded["mimi"]
    wav = speech_like(37000, 16000, seed=5, channels=2)
    sf.write(tmp_path / "a.wav", wav.T.numpy(), 16000, subtype="FLOAT")
    codes = encode_file(b, tmp_path / "a.wav", block_seconds=2.0)  # streamed in blocks, resampled
    assert codes == b.encode(wav[None], 16000)
    from codec.tokenfile import write_codes

    write_codes(tmp_path / "a.cdc", codes)
    audio, rate = decode_file(b, tmp_path / "a.cdc")
    assert rate == 16000 and audio.shape == (2, 37000)
    assert _relative(audio, b.decode(codes, sample_rate=16000)[0]) < 1e-4


@pytest.mark.parametrize("kind", OFFLINE)
def test_offline_models_refuse_to_stream(kind: str, loaded) -> None:
    with pytest.raises(StreamingError, match="cannot stream"):
        loaded[kind].stream()


@pytest.mark.parametrize("kind", KINDS)
def test_lm_layouts_round_trip(kind: str, loaded) -> None:
    b = loaded[kind]
    codes = b.encode([speech_like(9000, 16000, seed=6)[0], speech_like(3000, 16000, seed=7)[0]], 16000)
    k = b.total_codebooks
    for layout in (
        TokenLayout(k, b.codebook_size, delays=acoustic_delays(k)),
        TokenLayout(k, b.codebook_size, delays=staircase_delays(k)),
        TokenLayout(k, b.codebook_size, flat=True),
    ):
        back = layout.to_codes(layout.to_tokens(codes.codes, codes.frame_lengths))
        assert torch.equal(back.frame_lengths, codes.frame_lengths)
        for i, n in enumerate(codes.frame_lengths.tolist()):
            assert torch.equal(back.codes[i, :, :n], codes.codes[i, :, :n])


def _generate(b, delays: tuple[int, ...], codes: Codes, lengths: torch.Tensor) -> tuple[list, StepDecoder]:
    layout = TokenLayout(b.total_codebooks, b.codebook_size, delays=delays)
    tokens = layout.to_tokens(codes.codes, lengths)  # stands in for an LM's output
    decoder = StepDecoder(b, layout.delays, batch_size=codes.batch_size)
    return [decoder.step(tokens[..., i]) for i in range(1, tokens.shape[-1])], decoder


@pytest.mark.parametrize("kind", KINDS)
def test_step_decoder_equals_decoding_each_item(kind: str, loaded) -> None:
    b = loaded[kind]
    frames = 6
    wav = torch.stack([speech_like(frames * b.hop_length, b.sample_rate, seed=s) for s in (8, 9, 10)])
    codes = b.encode(wav, b.sample_rate)
    lengths = torch.tensor([frames, 4, 1])  # two items end early
    k = b.total_codebooks
    parts, decoder = _generate(b, acoustic_delays(k) if k > 1 else (0,), codes, lengths)
    done = decoder.flush()
    audio = torch.cat([*parts, done.wav], dim=-1)
    assert done.frame_lengths.tolist() == lengths.tolist()
    assert audio.shape == (3, 1, frames * b.hop_length)
    if kind == "mimi":  # audio as the frames complete (no decoder lookahead: nothing held back)
        assert [p.shape[-1] for p in parts[:3]] == [0, b.hop_length, b.hop_length]
        assert sum(p.shape[-1] for p in parts) == frames * b.hop_length and done.wav.shape[-1] == 0
    else:  # audio of each item when it ends
        assert sum(p.shape[-1] for p in parts) == 0
    for i, n in enumerate(lengths.tolist()):
        alone = b.decode(codes.codes[i : i + 1, :, :n])[0]
        assert _relative(audio[i, :, : n * b.hop_length], alone) < 1e-5
        assert not audio[i, :, n * b.hop_length :].any()


@pytest.mark.parametrize("kind", ["dac", "mimi"])
def test_step_decoder_takes_the_flattened_layout(kind: str, loaded) -> None:
    b = loaded[kind]
    wav = torch.stack([speech_like(4 * b.hop_length, b.sample_rate, seed=s) for s in (11, 12)])
    codes = b.encode(wav, b.sample_rate)
    layout = TokenLayout(b.total_codebooks, b.codebook_size, flat=True)
    tokens = layout.to_tokens(codes.codes, torch.tensor([4, 2]))  # [B, 1 + F * K + 1]
    decoder = StepDecoder(b, layout, batch_size=2)
    parts = [decoder.step(tokens[:, i]) for i in range(1, tokens.shape[-1])]
    done = decoder.flush()
    audio = torch.cat([*parts, done.wav], dim=-1)
    assert done.frame_lengths.tolist() == [4, 2] and audio.shape == (2, 1, 4 * b.hop_length)
    for i, n in enumerate((4, 2)):
        alone = b.decode(codes.codes[i : i + 1, :, :n])[0]
        assert _relative(audio[i, :, : n * b.hop_length], alone) < 1e-5
