"""The backends over the peers' own packages: SNAC's attention windows, and Stable Codec, whose
package cannot be installed beside this library's PyTorch (it pins torch 2.4), checked for its
one-line refusal and, through a stand-in with the package's interface, for the glue."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from codec import Codec
from codec.backends import BackendError
from tests.backends.tiny import save_tiny
from tests.conftest import speech_like


def test_snac_with_a_local_attention_window(tmp_path) -> None:
    folder = save_tiny(
        "snac", tmp_path / "snac", attn_window_size=4, decoder_dim=64
    )  # 64: one attention head
    b = Codec.from_pretrained(f"snac:{folder}")
    clips = [speech_like(30000, 24000, seed=1)[0], speech_like(7000, 24000, seed=2)[0]]
    codes = b.encode(clips, 24000)
    assert codes.frame_lengths.tolist() == [15, 4] and codes.codes.shape == (2, 7, 15)
    audio = b.decode(codes)  # the decoder's input is padded to whole windows
    assert audio.shape == (2, 1, 30000) and torch.isfinite(audio).all() and not audio[1, :, 7000:].any()
    assert torch.equal(audio[1, :, :7000], b.decode(codes.item(1))[0])  # decoded at its own length
    assert torch.equal(b.decode(codes), audio)  # the noise is seeded: the same codes, the same audio


def test_stable_codec_without_its_package_says_why(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "stable_codec", None)
    with pytest.raises(BackendError, match=r"stable-codec package.*pins torch==2\.4"):
        Codec.from_pretrained("stablecodec")


class _StandIn:
    """The interface of ``stable_codec.StableCodec`` (0.1.2) with a trivial model: a 640-sample
    frame's mean and spread, each quantized to 125 levels, make the two stage tokens."""

    sample_rate = 16000

    def __init__(self, model_config_path=None, ckpt_path=None, pretrained_model=None, device=None) -> None:
        self.model = torch.nn.Conv1d(1, 1, 1)
        self.model.downsampling_ratio = 640
        self.preset = None

    def set_posthoc_bottleneck(self, stages: str) -> None:
        self.preset = stages

    def encode(self, audio: torch.Tensor, posthoc_bottleneck: bool = False):
        assert posthoc_bottleneck and self.preset == "2x15625_700bps"
        frames = audio.reshape(audio.shape[0], -1, 640)
        stats = torch.stack([frames.mean(-1), frames.std(-1)], dim=1)  # [B, 2, S]
        ids = ((stats.clamp(-1, 1) + 1) * 62).round().long() * 125
        return stats, [ids[:, i, :, None] for i in range(2)]

    def decode(self, tokens: list[torch.Tensor], posthoc_bottleneck: bool = False) -> torch.Tensor:
        level = tokens[0][..., 0].float() / 125 / 62 - 1
        return level.repeat_interleave(640, dim=-1)[:, None]


def test_stable_codec_glue_with_a_stand_in(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "stable_codec", types.SimpleNamespace(StableCodec=_StandIn))
    b = Codec.from_pretrained("stablecodec:someone/stable-codec")
    assert (b.kind, b.sample_rate, b.hop_length, b.codebook_size) == ("stablecodec", 16000, 640, 15625)
    assert b.codebook_counts() == (2,) and b.bitrate() == pytest.approx(25 * 2 * 13.93, rel=1e-3)
    assert b.name == "stablecodec:someone--stable-codec#2x15625_700bps"
    codes = b.encode([speech_like(8000, seed=3)[0], speech_like(3000, seed=4)[0]], 16000)
    assert codes.codes.shape == (2, 2, 13) and codes.frame_lengths.tolist() == [13, 5]
    assert b.decode(codes).shape == (2, 1, 8000)
    with pytest.raises(ValueError, match="num_codebooks must be in 2"):
        b.encode(speech_like(8000)[0], 16000, num_codebooks=1)
    other = Codec.from_pretrained("stablecodec:someone/stable-codec#4x729_1000bps")
    assert other.fingerprint != b.fingerprint  # the same weights behind another bottleneck
    with pytest.raises(BackendError, match="unknown bottleneck"):
        Codec.from_pretrained("stablecodec:someone/stable-codec#3x9")
