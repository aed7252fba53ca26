"""Property-based round trips of the LM layouts (hypothesis): random K, F, delays, lengths, sizes."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.tokens import (
    TokenLayout,
    apply_delay_pattern,
    flatten_codes,
    mask_frames,
    undo_delay_pattern,
    unflatten_tokens,
)

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def batches(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int, tuple[int, ...]]:
    """Codes ``[B, K, F]``, frame_lengths ``[B]``, codebook_size and a delay vector."""
    b, k, f = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(0, 7))
    size = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    codes = torch.randint(0, size, (b, k, f), generator=torch.Generator().manual_seed(seed))
    lengths = torch.tensor(draw(st.lists(st.integers(0, f), min_size=b, max_size=b)))
    delays = tuple(draw(st.lists(st.integers(0, 4), min_size=k, max_size=k)))
    return codes, lengths, size, delays


@SETTINGS
@given(batches())
def test_delay_pattern_round_trip(batch) -> None:
    codes, _, size, delays = batch
    delayed = apply_delay_pattern(codes, size, delays)
    assert delayed.shape[-1] == codes.shape[-1] + max(delays)
    assert torch.equal(undo_delay_pattern(delayed, delays), codes)
    # Every code appears once, every other position is pad.
    assert int((delayed != size).sum()) == codes.numel()


@SETTINGS
@given(batches())
def test_flatten_round_trip(batch) -> None:
    codes, _, size, _ = batch
    tokens = flatten_codes(codes, size)
    assert tokens.shape == (codes.shape[0], codes.shape[1] * codes.shape[2])
    assert torch.equal(unflatten_tokens(tokens, codes.shape[1], size), codes)


@SETTINGS
@given(batches(), st.booleans(), st.booleans(), st.booleans())
def test_layout_round_trip(batch, flat: bool, begin: bool, end: bool) -> None:
    codes, lengths, size, delays = batch
    b, k, f = codes.shape
    layout = TokenLayout(k, size, delays=() if flat else delays, flat=flat, begin=begin, end=end)
    tokens = layout.to_tokens(codes, lengths)
    assert tokens.shape == ((b, layout.num_steps(f)) if flat else (b, k, layout.num_steps(f)))
    assert bool(((tokens >= 0) & (tokens < layout.vocab_size)).all())
    back = layout.to_codes(tokens)
    assert torch.equal(back.frame_lengths, lengths)
    assert torch.equal(back.codes, mask_frames(codes, lengths, 0))
    # Specials only where the layout puts them: a code per valid (frame, level), one end per
    # level (parallel) or per item (flat), one begin per stream.
    specials = tokens >= layout.pad_id
    assert int((~specials).sum()) == int(lengths.sum()) * k
    streams = b * (1 if flat else k)
    assert int((tokens == layout.end_id).sum()) == (streams if end else 0)
    assert int((tokens == layout.begin_id).sum()) == (streams if begin else 0)
    if end:  # right after each item's last frame: per level at its delayed position, or once
        stops = tokens.reshape(b, -1, tokens.shape[-1]) == layout.end_id
        want = int(begin) + (lengths[:, None] * k if flat else lengths[:, None] + torch.tensor(delays))
        assert torch.equal(stops.to(torch.long).argmax(dim=-1), want)
    if flat:
        level = (torch.arange(tokens.shape[-1]) - int(begin)) % k
        offsets = torch.tensor(layout.offsets)[level].expand_as(tokens)
        assert bool(((tokens - offsets)[~specials] < size).all())  # codes sit in their level's range


@SETTINGS
@given(batches(), st.integers(0, 3))
def test_layout_of_a_longer_padded_batch_reads_back_the_same(batch, extra: int) -> None:
    """Padding the batch with more frames (past every length) changes nothing but the pad."""
    codes, lengths, size, delays = batch
    layout = TokenLayout(codes.shape[1], size, delays=delays)
    longer = torch.cat([codes, torch.randint(0, size, (*codes.shape[:2], extra))], dim=-1)
    back = layout.to_codes(layout.to_tokens(longer, lengths))
    assert torch.equal(back.frame_lengths, lengths)
    assert torch.equal(back.codes[..., : codes.shape[-1]], mask_frames(codes, lengths, 0))
    assert not back.codes[..., codes.shape[-1] :].any()
