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


def _read_offline(
    codec: Codec, layout: TokenLayout, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """What offline decoding gives for what ``layout.to_codes`` reads from ``tokens``."""
    read = layout.to_codes(tokens)
    codes = Codes(read.codes, read.frame_lengths * HOP, 16000, HOP, codec.codebook_size)
    return codec.decode(codes), read.frame_lengths


def _feed(
    decoder: StepDecoder, tokens: torch.Tensor, begin: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [decoder.step(tokens[..., i]) for i in range(int(begin), tokens.shape[-1])]
    done = decoder.flush()
    return torch.cat([*parts, done.wav], dim=-1), done.frame_lengths


def test_flat_layout_one_token_per_step_equals_offline(debug_codec: Codec) -> None:
    codes, lengths = _codes(debug_codec, 3).codes, torch.tensor([14, 6, 1])
    layout = TokenLayout(4, debug_codec.codebook_size, flat=True, offset=500)  # e.g. after 500 text ids
    tokens = layout.to_tokens(codes, lengths)
    decoder = StepDecoder(debug_codec, layout, batch_size=3)
    outs = [decoder.step(tokens[:, i]) for i in range(1, tokens.shape[-1])]
    done = decoder.flush()
    offline = debug_codec.decode(Codes(codes, lengths * HOP, 16000, HOP, debug_codec.codebook_size))
    audio = torch.cat([*outs, done.wav], dim=-1)
    assert audio.shape == offline.shape and (audio - offline).abs().max() <= TOL
    assert done.frame_lengths.tolist() == lengths.tolist()
    # A frame completes with its K-th token; its audio is out one lookahead (a frame) later.
    returned = torch.tensor([o.shape[-1] for o in outs]).cumsum(0)
    steps = torch.arange(1, len(outs) + 1)
    assert returned.tolist() == ((steps // 4) * HOP - HOP).clamp(min=0).tolist()
    # [B, 1] columns (what sampling returns) are taken too.
    again = StepDecoder(debug_codec, layout, batch_size=3)
    audio2 = torch.cat(
        [*(again.step(tokens[:, i, None]) for i in range(1, tokens.shape[-1])), again.flush().wav], -1
    )
    assert torch.equal(audio2, audio)


def test_a_layout_with_an_offset_decodes_as_without(debug_codec: Codec) -> None:
    codes = _codes(debug_codec, 2, frames=8).codes
    plain = TokenLayout(4, debug_codec.codebook_size, delays=staircase_delays(4))
    shifted = TokenLayout(4, debug_codec.codebook_size, delays=staircase_delays(4), offset=32000)
    a, _ = _feed(StepDecoder(debug_codec, plain.delays, batch_size=2), plain.to_tokens(codes))
    b, _ = _feed(StepDecoder(debug_codec, shifted, batch_size=2), shifted.to_tokens(codes))
    assert torch.equal(a, b)


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_tokens_decode_as_to_codes_reads_them(debug_codec: Codec, flat: bool, seed: int) -> None:
    """Ragged generations: ends at random places, anything after them, cut anywhere."""
    gen = torch.Generator().manual_seed(seed)
    codes = _codes(debug_codec, 3, frames=9).codes
    kwargs = {"flat": True} if flat else {"delays": (0, 2, 1, 1)}
    layout = TokenLayout(4, debug_codec.codebook_size, **kwargs)
    tokens = layout.to_tokens(codes, torch.randint(1, 10, (3,), generator=gen))
    stop = 1 + int(torch.randint(4 + 1, tokens.shape[-1] + 1, (1,), generator=gen))
    tokens = tokens[..., :stop].clone()  # generation cut anywhere after the first frame
    if not flat:  # one level of item 2 ends early: its item ends at that frame
        tokens[2, 1, 1 + 3 + 2 :] = layout.end_id
    ended = tokens == layout.pad_id
    tokens[ended] = torch.randint(0, 10**6, (int(ended.sum()),), generator=gen)  # after the end: unread
    offline, lengths = _read_offline(debug_codec, layout, tokens)
    audio, frame_lengths = _feed(StepDecoder(debug_codec, layout, batch_size=3), tokens)
    assert frame_lengths.tolist() == lengths.tolist()
    # Steps taken after every item has ended still return (zero) audio: compare up to the longest.
    n = offline.shape[-1]
    assert audio.shape[-1] >= n and (audio[..., :n] - offline).abs().max() <= TOL
    assert not audio[..., n:].any()


def test_tokens_that_are_neither_codes_nor_an_end_are_refused_naming_the_step(debug_codec: Codec) -> None:
    codes = _codes(debug_codec, 2, frames=6).codes
    layout = TokenLayout(4, debug_codec.codebook_size, delays=(0, 1, 1, 1))
    tokens = layout.to_tokens(codes)
    offline, _ = _feed(StepDecoder(debug_codec, layout, batch_size=2), tokens)
    decoder = StepDecoder(debug_codec, layout, batch_size=2)
    parts = [decoder.step(tokens[..., i]) for i in range(1, 4)]
    for bad, problem in ((5000, "outside this layout's ids 0..66"), (-1, "outside"), (65, "the begin token")):
        column = tokens[..., 4].clone()
        column[1, 2] = bad
        with pytest.raises(ValueError, match=rf"step 3, item 1 \(row 1\), level 2: token {bad} is {problem}"):
            decoder.step(column)
    # A refused step is not taken: the same decoder goes on to give the offline audio.
    audio, _ = _feed_from(decoder, tokens, 4, parts)
    assert torch.equal(audio, offline)
    flat = TokenLayout(4, debug_codec.codebook_size, flat=True)
    decoder = StepDecoder(debug_codec, flat, batch_size=2)
    tokens = flat.to_tokens(codes, torch.tensor([6, 1]))
    for i in range(1, 6):
        decoder.step(tokens[:, i])
    wrong = tokens[:, 6].clone()
    wrong[0] = 7  # a level-0 code where level 1 belongs
    with pytest.raises(ValueError, match=r"step 5, item 0 \(row 0\), level 1: token 7 is a code of level 0"):
        decoder.step(wrong)
    wrong[0], wrong[1] = tokens[0, 6], 10**6  # item 1 ended at step 4: what it holds is not read
    decoder.step(wrong)


def _feed_from(
    decoder: StepDecoder, tokens: torch.Tensor, start: int, parts: list
) -> tuple[torch.Tensor, torch.Tensor]:
    parts = parts + [decoder.step(tokens[..., i]) for i in range(start, tokens.shape[-1])]
    done = decoder.flush()
    return torch.cat([*parts, done.wav], dim=-1), done.frame_lengths


@pytest.mark.parametrize("bad", [5000, -1])
def test_an_out_of_vocabulary_id_is_refused_not_taken_for_the_end(debug_codec: Codec, bad: int) -> None:
    decoder = StepDecoder(debug_codec, (0, 1, 1, 1), batch_size=2)  # the default parallel vocabulary
    column = torch.zeros(2, 4, dtype=torch.long)
    decoder.step(column)
    column[1, 0] = bad
    with pytest.raises(ValueError, match=rf"item 1 \(row 1\), level 0: token {bad} is outside"):
        decoder.step(column)
    assert not decoder.ended.any()
