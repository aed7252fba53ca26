"""What Codec.encode/decode and Stream.decode accept: lists of clips, plain code tensors, Codes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codec import Codec
from codec.audio import AudioError
from codec.streaming import Stream
from tests.conftest import speech_like

HOP = 160  # debug preset


def test_a_list_of_clips_encodes_each_exactly_as_alone(debug_codec: Codec) -> None:
    clips = [speech_like(n, seed=30 + i) for i, n in enumerate([9001, 161, 4000, 1])]  # [1, T_i]
    codes = debug_codec.encode(clips, 16000)
    assert codes.batch_size == 4 and codes.lengths.tolist() == [9001, 161, 4000, 1]
    decoded = debug_codec.decode(codes)
    for i, clip in enumerate(clips):
        alone = debug_codec.encode(clip[None], 16000)
        assert torch.equal(codes.item(i).codes, alone.codes), f"clip {i}: codes differ from alone"
        n = clip.shape[-1]
        assert torch.equal(decoded[i : i + 1, :, :n], debug_codec.decode(alone)), f"clip {i}: samples"
    # [T] clips are mono; stereo [2, T] clips code each channel; resampling works per clip too.
    mono = debug_codec.encode([c[0] for c in clips], 16000)
    assert mono == codes
    stereo = [speech_like(n, seed=40 + n, channels=2) for n in (3000, 7000)]
    both = debug_codec.encode(stereo, 22050)
    assert both.channels == 2 and both.original_lengths.tolist() == [3000, 7000]
    assert torch.equal(both.item(0).codes, debug_codec.encode(stereo[0][None], 22050).codes)


@pytest.mark.parametrize(
    ("clips", "kwargs", "fragment"),
    [
        ([], {}, "empty list"),
        ([torch.zeros(2, 100), torch.zeros(1, 100)], {}, "channel counts"),
        ([torch.zeros(100)], {"lengths": [50]}, "lengths come from the clips"),
        ([torch.zeros(100, dtype=torch.int16)], {}, "float"),
        ([torch.zeros(1, 1, 100)], {}, r"\[T\] or \[C, T\]"),
        ([torch.zeros(100), [0.0] * 100], {}, r"wav\[1\] must be a torch.Tensor"),
        ([torch.zeros(0)], {}, "empty"),
        ([torch.full((100,), float("nan"))], {}, "NaN"),
    ],
)
def test_bad_clip_lists_are_a_clear_error(
    debug_codec: Codec, clips: list, kwargs: dict, fragment: str
) -> None:
    with pytest.raises(AudioError, match=fragment):
        debug_codec.encode(clips, 16000, **kwargs)


def test_decode_takes_a_plain_code_tensor(debug_codec: Codec) -> None:
    wav = torch.stack([speech_like(20 * HOP, seed=50), speech_like(20 * HOP, seed=51)])
    codes = debug_codec.encode(wav, 16000)  # whole frames, so lengths are full
    want = debug_codec.decode(codes)
    for dtype in (torch.int64, torch.int32, torch.int16):
        assert torch.equal(debug_codec.decode(codes.codes.to(dtype)), want)
    assert torch.equal(debug_codec.decode(codes.codes[:, :2]), debug_codec.decode(codes.truncate(2)))
    assert debug_codec.decode(codes.codes, sample_rate=8000).shape == (2, 1, 10 * HOP)
    # An LM's tensor has no length: all frames are decoded in full.
    short = debug_codec.encode(wav[..., : 5 * HOP + 7], 16000)
    assert debug_codec.decode(short.codes).shape[-1] == 6 * HOP


@pytest.mark.parametrize(
    ("codes", "error", "fragment"),
    [
        (torch.zeros(1, 4, 3), ValueError, "integer"),
        (torch.zeros(1, 4, 3, dtype=torch.bool), ValueError, "integer"),
        (torch.zeros(4, 3, dtype=torch.long), ValueError, r"\[B, K, F\]"),
        (torch.full((1, 4, 3), 64), ValueError, "out of range"),
        (torch.full((1, 4, 3), -1), ValueError, "out of range"),
        (torch.zeros(1, 5, 3, dtype=torch.long), ValueError, "codebooks"),
        (torch.zeros(1, 4, 0, dtype=torch.long), ValueError, "empty"),
        ([[[0]]], ValueError, "integer tensor"),
    ],
)
def test_bad_code_tensors_are_a_clear_error(
    debug_codec: Codec, codes: object, error: type, fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        debug_codec.decode(codes)


def test_stream_decode_takes_codes_or_a_tensor(debug_codec: Codec, noncausal_codec: Codec) -> None:
    wav = torch.stack(
        [speech_like(12 * HOP, seed=60, channels=2), speech_like(12 * HOP, seed=61, channels=2)]
    )
    codes = debug_codec.encode(wav, 16000)
    a, b = debug_codec.stream(batch_size=2, channels=2), debug_codec.stream(batch_size=2, channels=2)
    assert torch.equal(a.decode(codes), b.decode(codes.codes))
    assert torch.equal(a.flush().wav, b.flush().wav)
    with pytest.raises(ValueError, match="made by model"):
        a.decode(noncausal_codec.encode(wav, 16000))
    with pytest.raises(ValueError, match="hold 1 items of 2 channels, this stream 2 of 2"):
        a.decode(codes.item(0))
    with pytest.raises(ValueError, match="hop"):
        a.decode(dataclasses.replace(codes, hop_length=80, fingerprint=""))
    with pytest.raises(ValueError, match="out of range"):
        a.decode(torch.full((4, 4, 1), 64))
    bare = Stream(debug_codec.model, batch_size=2, channels=2)  # no identity to check: rate, hop, size
    assert torch.equal(bare.decode(codes), b.decode(codes))
    with pytest.raises(ValueError, match="hop 80"):
        bare.decode(dataclasses.replace(codes, hop_length=80))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.uint32, torch.uint64, torch.int8])
def test_codes_of_any_integer_dtype_decode_offline_and_streamed(
    debug_codec: Codec, dtype: torch.dtype
) -> None:
    """Unsigned tensors (what some LM stacks store tokens as) decode like int64 ones."""
    wav = torch.stack([speech_like(10 * HOP, seed=70), speech_like(10 * HOP, seed=71)])
    codes = debug_codec.encode(wav, 16000)  # codes < 64: every dtype holds them
    typed = codes.codes.to(dtype)
    assert torch.equal(debug_codec.decode(typed), debug_codec.decode(codes.codes))
    assert torch.equal(debug_codec.decode(dataclasses.replace(codes, codes=typed)), debug_codec.decode(codes))
    a, b = debug_codec.stream(batch_size=2), debug_codec.stream(batch_size=2)
    assert torch.equal(a.decode(typed), b.decode(codes.codes))
    if dtype in (torch.uint16, torch.uint32):  # values a narrower signed type would hold, still refused
        with pytest.raises(ValueError, match="out of range"):
            debug_codec.decode(torch.full((1, 4, 2), 65, dtype=dtype))
    if dtype == torch.uint64:  # above int64's range: refused, never wrapped into a valid code
        with pytest.raises(ValueError, match="out of range"):
            debug_codec.decode(torch.full((1, 4, 2), 2**63 + 3, dtype=dtype))
