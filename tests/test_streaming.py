"""Streaming: parity with offline in any chunking, causality, independence, reset, refusal."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codec import Codec
from codec.audio import AudioError
from codec.streaming import StreamingError
from tests.conftest import speech_like, stream_codes

HOP = 160  # debug preset


@pytest.mark.parametrize("sizes", [[1], [7, 333, 1, 160], [159], [161, 480], [HOP * 16]])
def test_streaming_encode_in_odd_chunks_gives_offline_codes(debug_codec: Codec, sizes: list[int]) -> None:
    wav = torch.stack([speech_like(7777, seed=1), speech_like(7777, seed=2)])
    offline = debug_codec.encode(wav, 16000).codes
    assert torch.equal(stream_codes(debug_codec, wav, sizes), offline)


@pytest.mark.parametrize("frames", [1, 2, 3, 7])
def test_streaming_decode_in_chunks_equals_offline(debug_codec: Codec, frames: int) -> None:
    wav = torch.stack([speech_like(8000, seed=3)])
    codes = debug_codec.encode(wav, 16000)
    offline = debug_codec.decode(codes)
    stream = debug_codec.stream()
    parts = [stream.decode(codes.codes[..., i : i + frames]) for i in range(0, codes.num_frames, frames)]
    for part, i in zip(parts, range(0, codes.num_frames, frames), strict=True):
        assert part.shape[-1] == min(frames, codes.num_frames - i) * HOP
    parts.append(stream.flush().wav)
    streamed = torch.cat(parts, dim=-1)[..., stream.lookahead :][..., : offline.shape[-1]]
    assert (streamed - offline).abs().max() <= 1e-5


def test_loopback_flush_returns_every_sample(debug_codec: Codec) -> None:
    wav = speech_like(5000, seed=4)[None]
    stream, parts = debug_codec.stream(), []
    for i in range(0, 5000, 700):
        parts.append(stream.decode(stream.encode(wav[..., i : i + 700])))
    parts.append(stream.flush().wav)
    streamed = torch.cat(parts, dim=-1)
    assert streamed.shape[-1] == stream.lookahead + 32 * HOP  # ceil(5000 / 160) = 32 frames
    offline = debug_codec.decode(debug_codec.encode(wav, 16000))
    assert (streamed[..., stream.lookahead :][..., :5000] - offline).abs().max() <= 1e-5


def test_appending_future_never_changes_the_past(debug_codec: Codec) -> None:
    wav = speech_like(6400, seed=5)[None]
    other = wav.clone()
    other[..., 3200:] = torch.randn(1, 1, 3200) * 0.3
    a, b = debug_codec.encode(wav, 16000), debug_codec.encode(other, 16000)
    assert torch.equal(a.codes[..., :20], b.codes[..., :20])
    assert not torch.equal(a.codes[..., 20:], b.codes[..., 20:])
    # Decoder: frames after t change nothing before t's block plus the lookahead.
    sa, sb = debug_codec.stream(), debug_codec.stream()
    out_a = sa.decode(a.codes)
    mixed = torch.cat([a.codes[..., :20], b.codes[..., 20:]], dim=-1)
    out_b = sb.decode(mixed)
    assert torch.equal(out_a[..., : 20 * HOP], out_b[..., : 20 * HOP])


def test_streams_are_independent_and_batch_items_match_single_streams(debug_codec: Codec) -> None:
    w1, w2 = speech_like(4800, seed=6)[None], speech_like(4800, seed=7)[None]
    s1, s2, both = debug_codec.stream(), debug_codec.stream(), debug_codec.stream(batch_size=2)
    c1, c2, cb = [], [], []
    for i in range(0, 4800, 480):  # interleave the two single streams
        c1.append(s1.encode(w1[..., i : i + 480]))
        c2.append(s2.encode(w2[..., i : i + 480]))
        cb.append(both.encode(torch.cat([w1, w2])[..., i : i + 480]))
    c1, c2, cb = torch.cat(c1, -1), torch.cat(c2, -1), torch.cat(cb, -1)
    assert torch.equal(c1, debug_codec.encode(w1, 16000).codes)
    assert torch.equal(torch.cat([c1, c2]), cb)


def test_reset_restarts_only_the_masked_items(debug_codec: Codec) -> None:
    wav = torch.stack([speech_like(3200, seed=8), speech_like(3200, seed=9)])
    stream = debug_codec.stream(batch_size=2)
    stream.encode(wav[..., :1600])
    stream.reset(torch.tensor([True, False]))
    after = stream.encode(wav[..., 1600:])
    fresh = debug_codec.encode(wav[:1, :, 1600:], 16000).codes
    continued = debug_codec.encode(wav[1:], 16000).codes[..., 10:]
    assert torch.equal(after[:1], fresh)
    assert torch.equal(after[1:], continued)
    with pytest.raises(StreamingError, match="mask"):
        stream.reset(torch.tensor([True]))


def test_stream_input_is_checked(debug_codec: Codec) -> None:
    stream = debug_codec.stream(batch_size=2)
    with pytest.raises(AudioError, match=r"\[B=2"):
        stream.encode(torch.zeros(1, 1, 160))
    with pytest.raises(AudioError, match="NaN"):
        stream.encode(torch.full((2, 1, 160), float("inf")))
    with pytest.raises(ValueError, match="out of range"):
        stream.decode(torch.full((2, 4, 1), 64))
    with pytest.raises(ValueError, match="codebooks"):
        stream.decode(torch.zeros(2, 5, 1, dtype=torch.long))


def test_non_causal_model_refuses_to_stream(noncausal_codec: Codec) -> None:
    with pytest.raises(StreamingError, match="not causal"):
        noncausal_codec.stream()


def _state_tensors(stream) -> list[torch.Tensor]:
    """Every tensor of a stream's state (dataclasses and lists, walked)."""
    out, todo = [], [stream._enc, stream._dec, stream._pending]
    while todo:
        item = todo.pop()
        if isinstance(item, torch.Tensor):
            out.append(item)
        elif dataclasses.is_dataclass(item):
            todo.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, list):
            todo.extend(item)
    return out


def test_state_is_written_in_place(debug_codec: Codec) -> None:
    """What lets a CUDA graph replay a step: the state tensors never move."""
    wav = torch.stack([speech_like(3000, seed=10), speech_like(3000, seed=11)])
    stream = debug_codec.stream(batch_size=2)
    tensors = _state_tensors(stream)
    where = [(t.data_ptr(), t.shape) for t in tensors]
    blocks = len(debug_codec.model.encoder.trunk.blocks) + len(debug_codec.model.decoder.trunk.blocks)
    assert len(tensors) == blocks + 3  # a conv per block, the STFT and iSTFT tails, pending samples
    for i in range(0, 3000, 777):
        stream.decode(stream.encode(wav[..., i : i + 777]))
    assert stream.pending_samples and stream.flush().wav.shape[-1]
    stream.step(wav[..., : 2 * HOP])
    stream.reset(torch.tensor([True, False]))
    stream.encode(wav[..., :100])
    stream.reset()
    now = _state_tensors(stream)
    assert all(a is b for a, b in zip(now, tensors, strict=True))
    assert [(t.data_ptr(), t.shape) for t in now] == where
    assert all(t.abs().max() == 0 for t in now)  # flush and reset zero it


@pytest.mark.parametrize("frames", [1, 3])
def test_step_equals_encode_then_decode(debug_codec: Codec, frames: int) -> None:
    wav = 0.1 * torch.randn(2, 1, 4 * frames * HOP, generator=torch.Generator().manual_seed(2))
    stepped, reference = debug_codec.stream(batch_size=2), debug_codec.stream(batch_size=2)
    for i in range(0, wav.shape[-1], frames * HOP):
        out = stepped.step(wav[..., i : i + frames * HOP])
        codes = reference.encode(wav[..., i : i + frames * HOP])
        assert torch.equal(out.codes, codes)
        assert torch.equal(out.wav, reference.decode(codes))
    assert torch.equal(stepped.flush().wav, reference.flush().wav)
    with pytest.raises(StreamingError, match="f >= 1"):
        stepped.step(torch.zeros(2, 1, HOP + 1))
    stepped.encode(torch.zeros(2, 1, 10))
    with pytest.raises(StreamingError, match="pending"):
        stepped.step(torch.zeros(2, 1, HOP))
    with pytest.raises(StreamingError, match="CUDA"):
        stepped.cuda_graph()


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.uint8])
def test_step_refuses_integer_pcm_as_encode_does(debug_codec: Codec, dtype: torch.dtype) -> None:
    """16-bit PCM (full scale 32767) would be coded as samples far outside [-1, 1]."""
    pcm = (0.1 * speech_like(2 * HOP, seed=4) * 32767).to(dtype)[None]
    stream = debug_codec.stream()
    for feed in (stream.step, stream.encode):
        with pytest.raises(AudioError, match=f"float samples in \\[-1, 1\\], got {dtype}"):
            feed(pcm)
    assert stream.step(pcm.float() / 32768).codes.shape[-1] == 2  # scaled to floats, it codes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_captured_step_replays_like_the_stream(debug_codec: Codec) -> None:
    codec = Codec(debug_codec.model).to("cuda")
    try:
        wav = 0.1 * torch.randn(6, 3, 1, HOP, device="cuda")
        graph, eager = codec.stream(batch_size=3).cuda_graph(), codec.stream(batch_size=3)
        for chunk in wav:
            out, want = graph(chunk), eager.step(chunk)
            assert torch.equal(out.codes, want.codes)
            torch.testing.assert_close(out.wav, want.wav, atol=1e-5, rtol=1e-5)
    finally:
        codec.to("cpu")
