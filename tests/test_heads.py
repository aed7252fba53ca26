"""Synthesis heads: polar and waveform, on the frame grid and on a finer grid.

Every head keeps the library's promises: windows that sum to one (a constant input
reconstructs exactly), streaming decode in any chunking equal to offline, and a padded batch
item equal to the item alone.  The old head (polar, upsample 1) keeps its parameter layout, so
models saved before these options load unchanged.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codec import Codec, CodecConfig
from codec.config import ConfigError
from codec.modules.spectral import ISTFTHead
from tests.conftest import speech_like

HEADS = [
    ("polar", 1, None),
    ("polar", 4, None),
    ("waveform", 1, None),
    ("waveform", 4, None),
    ("polar", 5, None),
]
# Windows longer than the span of two blocks (75% overlap at upsample 2, 3 blocks at upsample 1).
WIDE = [("polar", 2, 4), ("waveform", 2, 4), ("polar", 1, 3)]


@pytest.mark.parametrize(
    ("upsample", "window"), [(1, None), (2, None), (4, None), (5, None), (2, 320), (1, 480)]
)
def test_windows_sum_to_one_on_every_grid(upsample: int, window: int | None) -> None:
    head = ISTFTHead(8, 160, "waveform", upsample, window)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.fill_(1.0)  # every window's samples are 1: the overlap-add must be 1
    out = head(torch.zeros(2, 9, 8), head.init_state(2, torch.device("cpu"), torch.float32))
    steady = out[:, 320:]  # the first blocks overlap the silent pre-roll
    torch.testing.assert_close(steady, torch.ones_like(steady), atol=1e-5, rtol=0)


def test_fine_grid_window_is_shorter_and_hop_finer() -> None:
    head = ISTFTHead(8, 320, "polar", 4)
    assert (head.sub_hop, head.n_fft, head.bins) == (80, 400, 201)
    assert head.proj.out_features == 4 * 2 * 201


def test_default_head_keeps_the_saved_layout() -> None:
    head = ISTFTHead(256, 320)
    assert head.proj.out_features == 2 * 321 and head.n_fft == 640


def test_wide_window_reaches_past_the_next_block_with_the_same_lookahead() -> None:
    head = ISTFTHead(8, 320, "polar", 2, 640)
    assert (head.sub_hop, head.n_fft, head.span, head.blocks) == (160, 640, 800, 3)
    state = head.init_state(1, torch.device("cpu"), torch.float32)
    assert state.tail.shape == (1, 320) and state.beyond is not None and state.beyond.shape == (1, 320)
    assert ISTFTHead(8, 320).init_state(1, torch.device("cpu"), torch.float32).beyond is None
    with pytest.raises(ValueError, match="multiple of the sub-hop"):
        ISTFTHead(8, 320, "polar", 2, 600)
    with pytest.raises(ValueError, match="at least 480"):
        ISTFTHead(8, 320, "polar", 2, 320)


def _codec(kind: str, upsample: int, window_hops: int | None = None) -> Codec:
    cfg = CodecConfig.from_yaml("debug")
    window = None if window_hops is None else window_hops * cfg.hop_length // upsample
    decoder = dataclasses.replace(cfg.decoder, head=kind, head_upsample=upsample, head_window=window)
    torch.manual_seed(0)
    return Codec.from_config(dataclasses.replace(cfg, decoder=decoder, name=f"debug-{kind}-{upsample}"))


@pytest.mark.parametrize(("kind", "upsample", "window_hops"), HEADS + WIDE)
def test_streaming_decode_equals_offline(kind: str, upsample: int, window_hops: int | None) -> None:
    codec = _codec(kind, upsample, window_hops)
    codes = codec.encode(speech_like(4000, seed=7)[None], 16000)
    offline = codec.decode(codes)
    for frames in (1, 3):
        stream = codec.stream()
        parts = [stream.decode(codes.codes[..., i : i + frames]) for i in range(0, codes.num_frames, frames)]
        parts.append(stream.flush().wav)
        streamed = torch.cat(parts, dim=-1)[..., stream.lookahead :][..., : offline.shape[-1]]
        assert (streamed - offline).abs().max() <= 1e-5


@pytest.mark.parametrize(
    ("kind", "upsample", "window_hops"), [("polar", 4, None), ("waveform", 4, None), *WIDE]
)
def test_padded_batch_item_decodes_as_alone(kind: str, upsample: int, window_hops: int | None) -> None:
    codec = _codec(kind, upsample, window_hops)
    short, long = speech_like(2100, seed=1), speech_like(4000, seed=2)
    batch = torch.zeros(2, 1, 4000)
    batch[0, :, :2100], batch[1] = short, long
    codes = codec.encode(batch, 16000, lengths=torch.tensor([2100, 4000]))
    alone = codec.decode(codec.encode(short[None], 16000))
    together = codec.decode(codes)
    assert alone.shape[-1] == 2100
    assert (together[0][..., :2100] - alone[0]).abs().max() <= 1e-5


def test_upsample_must_divide_the_hop() -> None:
    cfg = CodecConfig.from_yaml("debug")
    with pytest.raises(ConfigError, match="head_upsample"):
        dataclasses.replace(cfg, decoder=dataclasses.replace(cfg.decoder, head_upsample=3))
    with pytest.raises(ConfigError, match="head_window"):
        dataclasses.replace(cfg, decoder=dataclasses.replace(cfg.decoder, head_upsample=2, head_window=100))
    with pytest.raises(ValueError, match="kind"):
        ISTFTHead(8, 160, "complex")
