"""StepDecoder: generated columns of the delayed layout in, audio out; equal to offline decode."""

from __future__ import annotations

import pytest
import torch

from codec import Codec, Codes
from codec.tokens import StepDecoder, TokenLayout, acoustic_delays, staircase_delays
from tests.conftest import speech_like

HOP = 160  # debug preset; its decoder lookahead is one frame
TOL = 1e-5  # as the streaming parity tests


def _codes(codec: Codec, batch: int, channels: int = 1, frames: int = 14) -> Codes:
    wav = torch.stack([speech_like(frames * HOP, seed=20 + i, channels=channels) for i in range(batch)])
    return codec.encode(wav, 16000)


def _run(decoder: StepDecoder, tokens: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Feed every column after the begin column; returns per-step outputs, all audio, frame_lengths."""
    outs = [decoder.step(tokens[..., i]) for i in range(1, tokens.shape[-1])]
    done = decoder.flush()
    return outs, torch.cat([*outs, done.wav], dim=-1), done.frame_lengths


@pytest.mark.parametrize("delays", [(0, 0, 0, 0), staircase_delays(4), acoustic_delays(4), (3, 0, 2, 1)])
@pytest.mark.parametrize("batch", [1, 3])
def test_columns_decode_as_soon_as_frames_complete_and_equal_offline(
    debug_codec: Codec, delays: tuple[int, ...], batch: int
) -> None:
    codes = _codes(debug_codec, batch)
    offline = debug_codec.decode(codes.codes)  # a plain [B, K, F] tensor, as an LM makes
    layout = TokenLayout(4, debug_codec.codebook_size, delays=delays, end=False)
    decoder = StepDecoder(debug_codec, delays, batch_size=batch)
    outs, audio, lengths = _run(decoder, layout.to_tokens(codes.codes))
    assert audio.shape == offline.shape and (audio - offline).abs().max() <= TOL
    assert lengths.tolist() == [codes.num_frames] * batch
    # Frame f completes at step f + max(delays); its audio is out one lookahead later.
    returned = torch.tensor([o.shape[-1] for o in outs]).cumsum(0)
    complete = (torch.arange(len(outs)) - max(delays) + 1).clamp(min=0)
    assert returned.tolist() == (complete * HOP - HOP).clamp(min=0).tolist()


def test_items_that_end_early_equal_decoding_them_at_their_length(debug_codec: Codec) -> None:
    codes = _codes(debug_codec, 3)
    lengths = torch.tensor([14, 6, 1])
    layout = TokenLayout(4, debug_codec.codebook_size, delays=staircase_delays(4))
    decoder = StepDecoder(debug_codec, layout.delays, batch_size=3)
    _, audio, frame_lengths = _run(decoder, layout.to_tokens(codes.codes, lengths))
    offline = debug_codec.decode(Codes(codes.codes, lengths * HOP, 16000, HOP, debug_codec.codebook_size))
    assert audio.shape == offline.shape and (audio - offline).abs().max() <= TOL
    assert frame_lengths.tolist() == lengths.tolist()
    assert audio[1, :, 6 * HOP :].abs().max() == 0 and audio[2, :, HOP:].abs().max() == 0


def test_channels_and_reuse_after_flush(debug_codec: Codec) -> None:
    codes = _codes(debug_codec, 2, channels=2, frames=9)
    offline = debug_codec.decode(codes)
    layout = TokenLayout(4, debug_codec.codebook_size, delays=acoustic_delays(4, delay=2))
    decoder = StepDecoder(debug_codec, layout.delays, batch_size=2, channels=2)
    tokens = layout.to_tokens(codes.codes)  # rows b * C + c
    for _ in range(2):  # a flushed decoder starts afresh
        _, audio, _ = _run(decoder, tokens)
        assert audio.shape == offline.shape and (audio - offline).abs().max() <= TOL


def test_generation_stopped_early_keeps_only_complete_frames(debug_codec: Codec) -> None:
    codes = _codes(debug_codec, 2)
    layout = TokenLayout(4, debug_codec.codebook_size, delays=staircase_delays(4), end=False)
    tokens = layout.to_tokens(codes.codes)[..., : 1 + 10]  # 10 steps: frames 0..6 complete
    decoder = StepDecoder(debug_codec, layout.delays, batch_size=2)
    _, audio, lengths = _run(decoder, tokens)
    assert lengths.tolist() == [7, 7]
    offline = debug_codec.decode(codes.codes[..., :7])
    assert audio.shape == offline.shape and (audio - offline).abs().max() <= TOL


def test_bad_use_is_a_clear_error(debug_codec: Codec) -> None:
    with pytest.raises(ValueError, match=r"1\.\.4 entries"):
        StepDecoder(debug_codec, (0,) * 5)
    with pytest.raises(ValueError, match="non-negative"):
        StepDecoder(debug_codec, (0, -1))
    decoder = StepDecoder(debug_codec, (0, 1), batch_size=2)
    with pytest.raises(ValueError, match=r"shape \[2, 2\]"):
        decoder.step(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        decoder.step(torch.zeros(2, 2))
