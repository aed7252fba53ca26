"""Models of architecture lyra_v2: streaming, batching, residual k-means, config and the bundled model.

The streaming and batching tests run on a randomly initialised model of Lyra v2's shape (no
TFLite runtime needed); the bundled ``lyra_rvq_16k`` holds the real weights.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codec import Codec, CodecConfig
from codec.config import ConfigError
from codec.lyra import fit_residual_kmeans, lyra_config
from codec.model import build_model
from codec.pretrained import available
from tests.conftest import speech_like, stream_codes, threads

HOP = 320


@pytest.fixture(scope="module")
def codec() -> Codec:
    torch.manual_seed(0)
    model = build_model(lyra_config("lyra-test", total_codebooks=4, codebook_size=64))
    for p in model.encoder.parameters():  # the zero init of the port's layers would code silence
        torch.nn.init.normal_(p, std=0.1)
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.1)
    latent = model.encoder(speech_like(32000, seed=9)).detach()[0]
    fit_residual_kmeans(model.quantizer, latent, iters=3)
    return Codec(model)


@pytest.mark.parametrize("sizes", [[1], [7, 333, 1, 320], [319], [321, 960], [HOP * 5]])
def test_streamed_codes_equal_offline_codes(codec: Codec, sizes: list[int]) -> None:
    wav = torch.stack([speech_like(7777, seed=1), speech_like(7777, seed=2)])
    assert torch.equal(stream_codes(codec, wav, sizes), codec.encode(wav, 16000).codes)


@pytest.mark.parametrize("frames", [1, 2, 3, 7])
def test_streamed_audio_equals_offline_audio_without_lookahead(codec: Codec, frames: int) -> None:
    codes = codec.encode(speech_like(8000, seed=3)[None], 16000)
    offline = codec.decode(codes)
    stream = codec.stream()
    assert stream.lookahead == codec.lookahead == 0
    parts = [stream.decode(codes.codes[..., i : i + frames]) for i in range(0, codes.num_frames, frames)]
    assert [p.shape[-1] for p in parts] == [
        min(frames, codes.num_frames - i) * HOP for i in range(0, 25, frames)
    ]
    parts.append(stream.flush().wav)
    streamed = torch.cat(parts, dim=-1)[..., : offline.shape[-1]]
    assert (streamed - offline).abs().max() <= 1e-5


def test_future_input_never_changes_past_codes_or_audio(codec: Codec) -> None:
    wav = speech_like(6400, seed=5)[None]
    other = wav.clone()
    other[..., 3200:] = torch.randn(1, 1, 3200) * 0.3
    a, b = codec.encode(wav, 16000), codec.encode(other, 16000)
    assert torch.equal(a.codes[..., :10], b.codes[..., :10])
    assert not torch.equal(a.codes[..., 10:], b.codes[..., 10:])
    mixed = dataclasses.replace(a, codes=torch.cat([a.codes[..., :10], b.codes[..., 10:]], dim=-1))
    assert torch.equal(codec.decode(a)[..., : 10 * HOP], codec.decode(mixed)[..., : 10 * HOP])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_padded_batch_items_get_their_own_codes_and_audio(codec: Codec, n_threads: int) -> None:
    """Bit for bit on one thread; on two, the library convolutions split a batch differently
    from one item, so the audio may differ in the last bits (codes never did here)."""
    clips = [speech_like(n, seed=s)[0] for n, s in ((9000, 1), (4100, 2), (640, 3))]
    with threads(n_threads):
        batch = codec.encode(clips, 16000)
        audio = codec.decode(batch)
        for i, clip in enumerate(clips):
            alone = codec.encode(clip[None, None], 16000)
            assert torch.equal(batch.item(i).codes, alone.codes)
            diff = (audio[i, :, : clip.shape[-1]] - codec.decode(alone)[0]).abs().max()
            assert diff == 0 if n_threads == 1 else diff <= 1e-5


def test_first_k_codebooks_are_the_lower_bitrate_encoding(codec: Codec) -> None:
    wav = speech_like(6000, seed=6)[None]
    full = codec.encode(wav, 16000)
    assert torch.equal(codec.encode(wav, 16000, num_codebooks=2).codes, full.codes[:, :2])
    assert codec.bitrate(4) == 50 * 4 * 6


def test_residual_kmeans_error_falls_level_by_level() -> None:
    torch.manual_seed(0)
    model = build_model(lyra_config("k", total_codebooks=3, codebook_size=16))
    latent = torch.randn(600, 64) * torch.linspace(0.1, 3, 64)
    errors = fit_residual_kmeans(model.quantizer, latent, iters=5)
    assert errors[0] < float(latent.pow(2).mean()) and errors[0] > errors[1] > errors[2]
    codes = model.quantizer.encode(latent)
    residual = latent - model.quantizer.decode(codes)
    assert abs(float(residual.pow(2).mean()) - errors[-1]) <= 1e-4 * errors[-1]


def test_residual_kmeans_refuses_projected_codes() -> None:
    cfg = lyra_config("k", total_codebooks=2, codebook_size=16)
    cfg = dataclasses.replace(
        cfg, quantizer=dataclasses.replace(cfg.quantizer, kind="factorized", codebook_dim=8)
    )
    with pytest.raises(ValueError, match="without projection"):
        fit_residual_kmeans(build_model(cfg).quantizer, torch.randn(50, 64))


@pytest.mark.parametrize("change", [{"hop_length": 160}, {"latent_dim": 128}, {"causal": False}])
def test_lyra_architecture_refuses_other_shapes(change: dict) -> None:
    data = {**lyra_config("x").to_dict(), **change}
    with pytest.raises(ConfigError, match="architecture lyra_v2 needs"):
        CodecConfig.from_dict(data)


@pytest.mark.skipif("lyra_rvq_16k" not in available(), reason="no bundled weights")
def test_bundled_lyra_model_loads_by_name_beside_speech_16k() -> None:
    lyra = Codec.from_pretrained("lyra_rvq_16k")
    assert lyra.config.architecture == "lyra_v2" and lyra.name == "lyra_rvq_16k"
    assert (lyra.frame_rate, lyra.total_codebooks, lyra.codebook_size) == (50.0, 12, 1024)
    assert Codec.from_pretrained("speech_16k").config.architecture == "convnext"
    wav = speech_like(16000, seed=7)[None]
    codes = lyra.encode(wav, 16000, num_codebooks=6)
    assert codes.codes.shape == (1, 6, 50) and lyra.decode(codes).shape == (1, 1, 16000)


@pytest.mark.skipif(not {"lyra_rvq_16k", "lyra_rvq_16k_v2"} <= set(available()), reason="no bundled weights")
def test_lyra_rvq_16k_v2_codes_like_lyra_rvq_16k_and_decodes_otherwise() -> None:
    """The default fine-tuned only lyra_rvq_16k's decoder: the same encoder and quantizer
    weights, so the same codes for any audio; another decoder, so another identity."""
    old, new = Codec.from_pretrained("lyra_rvq_16k"), Codec.from_pretrained("lyra_rvq_16k_v2")
    wav = torch.stack([speech_like(24000, seed=s) for s in (3, 4)])
    a, b = old.encode(wav, 16000), new.encode(wav, 16000)
    assert torch.equal(a.codes, b.codes)
    assert not torch.equal(old.decode(a), new.decode(b))
    assert old.fingerprint != new.fingerprint
