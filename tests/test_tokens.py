"""Codes container and LM layouts on small examples worked out by hand."""

from __future__ import annotations

import pytest
import torch

from codec.tokens import (
    Codes,
    TokenLayout,
    acoustic_delays,
    apply_delay_pattern,
    flatten_codes,
    mask_frames,
    staircase_delays,
    undo_delay_pattern,
    unflatten_tokens,
)

T = torch.tensor


def test_flatten_round_trip_and_offsets() -> None:
    codes = torch.randint(0, 1024, (2, 3, 5))
    tokens = flatten_codes(codes, 1024)
    assert tokens.shape == (2, 15)
    assert tokens[0, 1] == codes[0, 1, 0] + 1024 and tokens[0, 3] == codes[0, 0, 1]
    assert torch.equal(unflatten_tokens(tokens, 3, 1024), codes)
    with pytest.raises(ValueError, match="multiple"):
        unflatten_tokens(tokens[:, :-1], 3, 1024)
    with pytest.raises(ValueError, match="outside"):
        unflatten_tokens(torch.full((1, 3), 5000), 3, 1024)


def test_delay_pattern_default_is_the_staircase() -> None:
    codes = torch.randint(0, 8, (2, 4, 6))
    delayed = apply_delay_pattern(codes, pad_id=-1)
    assert delayed.shape == (2, 4, 9)
    assert (delayed[:, 3, :3] == -1).all() and torch.equal(delayed[:, 3, 3:], codes[:, 3])
    assert torch.equal(undo_delay_pattern(delayed), codes)


def test_named_delay_vectors() -> None:
    assert staircase_delays(4) == (0, 1, 2, 3)
    assert acoustic_delays(4) == (0, 1, 1, 1) and acoustic_delays(3, delay=2) == (0, 2, 2)
    assert acoustic_delays(1) == (0,)
    with pytest.raises(ValueError, match="num_codebooks"):
        staircase_delays(0)
    with pytest.raises(ValueError, match="delay"):
        acoustic_delays(3, delay=-1)


def test_acoustic_and_custom_delays_by_hand() -> None:
    codes = T([[[1, 2], [3, 4], [5, 6]]])
    moshi = T([[[1, 2, 9], [9, 3, 4], [9, 5, 6]]])
    assert torch.equal(apply_delay_pattern(codes, 9, acoustic_delays(3)), moshi)
    assert torch.equal(undo_delay_pattern(moshi, [0, 1, 1]), codes)
    custom = T([[[9, 9, 1, 2], [3, 4, 9, 9]]])
    assert torch.equal(apply_delay_pattern(codes[:, :2], 9, [2, 0]), custom)
    assert torch.equal(undo_delay_pattern(custom, torch.tensor([2, 0])), codes[:, :2])


@pytest.mark.parametrize(
    ("delays", "error", "fragment"),
    [
        ([0, 1], ValueError, "2 entries for 3"),
        ([0, -1, 0], ValueError, "non-negative"),
        ([0, 1.0, 2], ValueError, "non-negative"),
        ("012", TypeError, "sequence"),
    ],
)
def test_bad_delays_are_refused(delays: object, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        apply_delay_pattern(torch.zeros(1, 3, 2, dtype=torch.long), 0, delays)


def test_mask_frames_by_hand() -> None:
    codes = T([[[1, 2, 3]], [[4, 5, 6]]])
    assert torch.equal(mask_frames(codes, [3, 1], 0), T([[[1, 2, 3]], [[4, 0, 0]]]))
    assert torch.equal(mask_frames(codes, None, 0), codes)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        mask_frames(codes, [4, 1], 0)
    with pytest.raises(ValueError, match="2 entries for a batch of 1"):
        mask_frames(codes[:1], [1, 1], 0)


# Two items of two frames (item 1 is one frame long); K = 2 levels, codebook_size 4.
CODES = T([[[0, 1], [2, 3]], [[3, 3], [1, 0]]])
LENGTHS = T([2, 1])


def test_parallel_layout_by_hand() -> None:
    layout = TokenLayout(2, 4, delays=(0, 1))
    assert (layout.pad_id, layout.begin_id, layout.end_id, layout.vocab_size) == (4, 5, 6, 7)
    assert layout.offsets == (0, 0) and layout.specials == {"pad": 4, "begin": 5, "end": 6}
    want = T([[[5, 0, 1, 6, 4], [5, 4, 2, 3, 6]], [[5, 3, 6, 4, 4], [5, 4, 1, 6, 4]]])
    tokens = layout.to_tokens(CODES, LENGTHS)
    assert torch.equal(tokens, want) and layout.num_steps(2) == 5
    back = layout.to_codes(tokens)
    assert torch.equal(back.codes, T([[[0, 1], [2, 3]], [[3, 0], [1, 0]]]))
    assert torch.equal(back.frame_lengths, LENGTHS)


def test_parallel_layout_without_specials_by_hand() -> None:
    layout = TokenLayout(2, 4, delays=(1, 0), begin=False, end=False)
    tokens = layout.to_tokens(CODES, LENGTHS)
    assert torch.equal(tokens, T([[[4, 0, 1], [2, 3, 4]], [[4, 3, 4], [1, 4, 4]]]))
    assert torch.equal(layout.to_codes(tokens).frame_lengths, LENGTHS)
    assert TokenLayout(2, 4).delays == (0, 0)  # no delays unless asked


def test_flat_layout_by_hand() -> None:
    layout = TokenLayout(2, 4, flat=True)
    assert (layout.pad_id, layout.begin_id, layout.end_id, layout.vocab_size) == (8, 9, 10, 11)
    assert layout.offsets == (0, 4)
    tokens = layout.to_tokens(CODES, LENGTHS)
    assert torch.equal(tokens, T([[9, 0, 6, 1, 7, 10], [9, 3, 5, 10, 8, 8]]))
    assert layout.num_steps(2) == 6
    back = layout.to_codes(tokens)
    assert torch.equal(back.codes, T([[[0, 1], [2, 3]], [[3, 0], [1, 0]]]))
    assert torch.equal(back.frame_lengths, LENGTHS)
    # Without specials it is flatten_codes, with the padded frames as pad.
    bare = TokenLayout(2, 4, flat=True, begin=False, end=False)
    assert torch.equal(bare.to_tokens(CODES), flatten_codes(CODES, 4))
    assert torch.equal(bare.to_tokens(CODES, LENGTHS)[1], T([3, 5, 8, 8]))


def test_generated_sequences_that_end_ragged_come_back() -> None:
    layout = TokenLayout(2, 4, delays=(0, 1))
    # Level 1 says "end" one frame before level 0 does: the item ends at the first such frame.
    tokens = T([[[5, 0, 1, 2, 6], [5, 4, 2, 6, 4]]])
    back = layout.to_codes(tokens)
    assert back.frame_lengths.tolist() == [1] and back.codes.tolist() == [[[0, 0], [2, 0]]]
    flat = TokenLayout(2, 4, flat=True, end=False)
    # A frame cut off halfway (level 1's slot holds a level-0 id) does not count.
    assert flat.to_codes(T([[9, 1, 5, 2, 3]])).frame_lengths.tolist() == [1]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"num_codebooks": 0}, "num_codebooks"),
        ({"codebook_size": 2.0}, "codebook_size"),
        ({"flat": True, "delays": (0, 1)}, "no delays"),
        ({"delays": (0, 1, 2)}, "3 entries"),
        ({"begin": 1}, "begin"),
    ],
)
def test_bad_layouts_are_refused(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        TokenLayout(**({"num_codebooks": 2, "codebook_size": 4} | kwargs))


def test_bad_layout_input_is_a_clear_error() -> None:
    layout = TokenLayout(2, 4, delays=(0, 1))
    with pytest.raises(ValueError, match="out of range"):
        layout.to_tokens(CODES + 2)
    with pytest.raises(ValueError, match="3 codebooks"):
        layout.to_tokens(torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        layout.to_tokens(CODES.float())
    with pytest.raises(TypeError, match="Tensor"):
        layout.to_tokens(CODES.tolist())
    with pytest.raises(ValueError, match=r"0\.\.2"):
        layout.to_tokens(CODES, [3, 1])
    tokens = layout.to_tokens(CODES, LENGTHS)
    with pytest.raises(ValueError, match="begin token"):
        layout.to_codes(tokens[..., 1:])
    with pytest.raises(ValueError, match="out of range"):
        layout.to_codes(tokens + 7)
    with pytest.raises(ValueError, match="dimensions"):
        layout.to_codes(tokens[0])
    with pytest.raises(ValueError, match="too few"):
        layout.to_codes(tokens[..., :2])
    with pytest.raises(ValueError, match="not a flattened layout"):
        TokenLayout(2, 4, flat=True).to_codes(T([[9, 0, 6, 1, 10]]))


def test_codes_metadata() -> None:
    codes = Codes(
        torch.zeros(4, 3, 10, dtype=torch.long), torch.tensor([3200, 1]), 16000, 320, 1024, channels=2
    )
    assert codes.batch_size == 2 and codes.frame_lengths.tolist() == [10, 1]
    assert codes.bitrate() == 1500
    item = codes.item(1)
    assert item.codes.shape == (2, 3, 1) and item.lengths.tolist() == [1]
    assert codes.truncate(1).num_codebooks == 1
    with pytest.raises(ValueError):
        codes.truncate(4)
    with pytest.raises(IndexError):
        codes.item(2)
