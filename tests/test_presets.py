"""Speech-LM presets (low frame rate, single codebook) and the trunk rate changes they use.

On tiny versions of each preset (:mod:`tests.tiny_presets`): shapes, token rate, streaming in
any chunking equal to offline, causality and the stated lookahead, batch invariance (causal
and non-causal), state written in place, save and reload.  Models without rate changes keep
their parameter names, so older model directories load unchanged.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from codec import Codec, CodecConfig
from codec.checkpoint import save_model
from codec.config import ConfigError
from codec.model import build_model
from codec.modules.resample import FramePool, FrameUnpool
from tests.conftest import speech_like, stream_codes
from tests.test_streaming import _state_tensors
from tests.tiny_presets import PRESETS, tiny_config

# preset -> (hop, frame rate, codebooks, codebook size, tokens/s, bps, lookahead samples)
EXPECTED = {
    "low_frame_rate_16k": (1280, 12.5, 8, 2048, 100, 1100, 320),
    "single_codebook_16k": (400, 40.0, 1, 4096, 40, 480, 200),
}


def _codec(preset: str, **changes: object) -> Codec:
    torch.manual_seed(0)
    return Codec.from_config(tiny_config(preset, **changes))


@pytest.fixture(scope="module", params=PRESETS)
def codec(request) -> Codec:
    return _codec(request.param)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_have_the_documented_rates(preset: str) -> None:
    hop, rate, k, size, tokens, bps, lookahead = EXPECTED[preset]
    cfg = CodecConfig.from_yaml(preset)
    assert (cfg.hop_length, cfg.frame_rate, cfg.quantizer.total_codebooks) == (hop, rate, k)
    assert cfg.quantizer.codebook_size == size and cfg.causal
    assert rate * k == tokens and rate * k * math.log2(size) == bps
    codec = _codec(preset)
    assert codec.lookahead == lookahead and codec.bitrate() == bps
    # The tokens a second of audio really gets (one partial frame rounds up).
    assert codec.encode(torch.zeros(1, 1, 4 * 16000), 16000).codes[0].numel() == 4 * tokens


def test_shapes(codec: Codec) -> None:
    wav = torch.stack([speech_like(5000, seed=1), speech_like(5000, seed=2)])
    codes = codec.encode(wav, 16000)
    frames = -(-5000 // codec.hop_length)
    assert codes.codes.shape == (2, codec.total_codebooks, frames)
    assert codec.decode(codes).shape == (2, 1, 5000)
    latent = codec.model.encoder(torch.zeros(3, frames * codec.hop_length))
    assert latent.shape == (3, frames, codec.config.latent_dim)


@pytest.mark.parametrize("sizes", [[1, 999], [7, 333, 1, 1280], [2560, 3]])
def test_streaming_encode_in_any_chunking_gives_offline_codes(codec: Codec, sizes: list[int]) -> None:
    wav = torch.stack([speech_like(6001, seed=3), speech_like(6001, seed=4)])
    assert torch.equal(stream_codes(codec, wav, sizes), codec.encode(wav, 16000).codes)


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_streaming_decode_in_any_chunking_equals_offline(codec: Codec, frames: int) -> None:
    codes = codec.encode(speech_like(9001, seed=5)[None], 16000)
    offline = codec.decode(codes)
    stream = codec.stream()
    parts = [stream.decode(codes.codes[..., i : i + frames]) for i in range(0, codes.num_frames, frames)]
    assert all(p.shape[-1] % codec.hop_length == 0 for p in parts)
    parts.append(stream.flush().wav)
    streamed = torch.cat(parts, dim=-1)
    assert streamed.shape[-1] == codes.num_frames * codec.hop_length + stream.lookahead
    assert (streamed[..., stream.lookahead :][..., :9001] - offline).abs().max() <= 1e-5


def test_future_frames_never_change_the_past_and_the_lookahead_is_tight(codec: Codec) -> None:
    hop, t = codec.hop_length, 4
    wav = speech_like(10 * hop, seed=6)[None]
    other = wav.clone()
    other[..., t * hop :] = 0.3 * torch.randn(1, 1, 6 * hop)
    a, b = codec.encode(wav, 16000).codes, codec.encode(other, 16000).codes
    assert torch.equal(a[..., :t], b[..., :t]) and not torch.equal(a[..., t:], b[..., t:])
    # Decoder: codes from frame t on change nothing the stream emitted before frame t's block;
    # they do change the lookahead samples right after it, so the lookahead is not overstated.
    out_a = codec.stream().decode(a)
    out_b = codec.stream().decode(torch.cat([a[..., :t], b[..., t:]], dim=-1))
    assert torch.equal(out_a[..., : t * hop], out_b[..., : t * hop])
    assert not torch.equal(
        out_a[..., t * hop : t * hop + codec.lookahead], out_b[..., t * hop : t * hop + codec.lookahead]
    )


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("preset", PRESETS)
def test_batch_invariance(preset: str, causal: bool) -> None:
    codec = _codec(preset, causal=causal)
    # Item 1 has more than the 16 frames an item alone is padded to: its last frames meet
    # padding frames in the batch and the end of the input alone, which the masks must equalise.
    lengths = [30000, 22000, 1, 2700]
    wav = torch.full((4, 1, 30000), 0.5)  # garbage in the padding must not matter
    for i, n in enumerate(lengths):
        wav[i, :, :n] = speech_like(n, seed=10 + i)
    codes = codec.encode(wav, 16000, lengths=lengths)
    decoded = codec.decode(codes)
    for i, n in enumerate(lengths):
        alone = codec.encode(wav[i : i + 1, :, :n], 16000)
        assert torch.equal(alone.codes, codes.item(i).codes), f"item {i}: codes differ from the batch"
        assert torch.equal(codec.decode(alone), decoded[i : i + 1, :, :n]), f"item {i}: samples differ"


def test_state_is_typed_per_layer_and_written_in_place(codec: Codec) -> None:
    stream = codec.stream(batch_size=2)
    tensors = _state_tensors(stream)
    m = codec.model
    convs = sum(len(t.blocks) for t in (m.encoder.trunk, m.encoder.fine, m.decoder.trunk, m.decoder.fine))
    assert len(tensors) == convs + 3  # a conv per block, the STFT and iSTFT tails, pending samples
    wav = speech_like(5000, seed=7).expand(2, 1, -1)
    stream.decode(stream.encode(wav))
    stream.flush()
    now = _state_tensors(stream)
    assert all(x is y for x, y in zip(now, tensors, strict=True))
    assert all(x.abs().max() == 0 for x in now)


def test_save_and_reload_give_the_same_codes_and_samples(tmp_path, codec: Codec) -> None:
    loaded = Codec.from_pretrained(save_model(codec.model, tmp_path / "m"))
    assert loaded.config == codec.config and loaded.fingerprint == codec.fingerprint
    codes = codec.encode(speech_like(6000, seed=8)[None], 16000)
    assert torch.equal(loaded.encode(speech_like(6000, seed=8)[None], 16000).codes, codes.codes)
    assert torch.equal(loaded.decode(codes), codec.decode(codes))


def test_models_without_rate_changes_keep_their_parameter_names() -> None:
    names = set(build_model(CodecConfig.from_yaml("debug")).state_dict())
    assert not any(n.split(".")[1] in ("fine", "pool", "unpool") for n in names)
    with_changes = set(build_model(tiny_config("low_frame_rate_16k")).state_dict())
    assert {"encoder.pool.proj.weight", "decoder.unpool.proj.weight"} <= with_changes


def test_pool_and_unpool_act_on_whole_groups_only() -> None:
    pool, unpool = FramePool(4, 6, 3), FrameUnpool(6, 4, 3)
    x = torch.randn(2, 9, 4)
    y = pool(x)
    assert y.shape == (2, 3, 6) and unpool(y).shape == (2, 9, 4)
    # Pooled frame 1 depends on fine frames 3..5 only.
    x2 = x.clone()
    x2[:, 6:] += 1.0
    x2[:, :3] += 1.0
    assert torch.equal(pool(x2)[:, 1], y[:, 1])
    with pytest.raises(ValueError, match="whole number"):
        pool(torch.zeros(1, 8, 4))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"encoder": {"downsample": 3}}, r"encoder\.downsample"),
        ({"decoder": {"upsample": 7}}, r"decoder\.upsample"),
        ({"encoder": {"fine_layers": 2}}, r"encoder\.fine_layers .* needs encoder\.downsample"),
        ({"decoder": {"fine_layers": -1}}, r"decoder\.fine_layers"),
        ({"decoder": {"upsample": 4, "head_upsample": 3}}, "head_upsample"),
        ({"encoder": {"downsample": 0}}, "downsample"),
    ],
)
def test_bad_rate_changes_are_errors_naming_the_field(changes: dict, fragment: str) -> None:
    doc = CodecConfig.from_yaml("debug").to_dict()
    for section, values in changes.items():
        doc[section].update(values)
    doc["hop_length"] = 320
    with pytest.raises(ConfigError, match=fragment):
        CodecConfig.from_dict(doc)


def test_a_finer_decoder_grid_shortens_the_lookahead() -> None:
    cfg = tiny_config("low_frame_rate_16k")
    finer = dataclasses.replace(cfg, decoder=dataclasses.replace(cfg.decoder, upsample=8))
    assert build_model(finer).decoder_delay == 160 and build_model(cfg).decoder_delay == 320


def test_noncausal_encoder_ignores_what_lies_past_an_item() -> None:
    """The fine blocks see the frame mask too: latents of an item's frames are the same
    whether padding frames or the end of the input follow them."""
    codec = _codec("low_frame_rate_16k", causal=False)
    hop, n = codec.hop_length, 22000  # 18 frames, the last one partial
    item = speech_like(n, seed=1)[0]
    alone = torch.nn.functional.pad(item, (0, 18 * hop - n))[None]
    batch = torch.zeros(2, 24 * hop)
    batch[0, :n], batch[1] = item, speech_like(24 * hop, seed=2)[0]
    with torch.no_grad():
        la = codec.model.encoder(alone, frame_mask=codec._frame_mask(torch.tensor([n]), 1, 18))
        lb = codec.model.encoder(batch, frame_mask=codec._frame_mask(torch.tensor([n, 24 * hop]), 1, 24))
    torch.testing.assert_close(lb[:1, :18], la, atol=1e-6, rtol=0)
