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
    # A level's end closes the item even when the other levels run on; what follows is not read.
    back = layout.to_codes(T([[[5, 0, 6, 1, 99], [5, 4, 2, 3, -7]]]))
    assert back.frame_lengths.tolist() == [1] and back.codes.tolist() == [[[0, 0], [2, 0]]]


def test_flat_generation_cut_mid_frame_comes_back_as_its_whole_frames() -> None:
    flat = TokenLayout(2, 4, flat=True)
    complete = flat.to_tokens(T([[[0, 1, 2], [3, 2, 1]]]))  # [9, 0, 7, 1, 6, 2, 5, 10]
    for n in range(1, complete.shape[-1]):  # every cut: after the begin token, mid-frame, ...
        back = flat.to_codes(complete[:, :n])
        assert back.frame_lengths.tolist() == [(n - 1) // 2]
        assert torch.equal(back.codes[..., : (n - 1) // 2], T([[[0, 1, 2], [3, 2, 1]]])[..., : (n - 1) // 2])
    # The end token mid-frame: the frame it cuts is dropped.
    assert flat.to_codes(T([[9, 0, 6, 1, 10]])).frame_lengths.tolist() == [1]
    # A parallel generation stopped before any frame has all its levels: zero frames.
    parallel = TokenLayout(2, 4, delays=(0, 3))
    assert parallel.to_codes(T([[[5, 0, 1], [5, 4, 4]]])).codes.shape == (1, 2, 0)


@pytest.mark.parametrize(
    ("kwargs", "tokens", "where"),
    [
        (
            {"flat": True},
            [[9, 0, 6, 1, 3, 10]],
            r"tokens\[0, 4\] = 3: a code of level 0, where level 1's",
        ),
        (
            {"flat": True},
            [[9, 0, 6, 11, 5, 10]],
            r"tokens\[0, 3\] = 11: outside this layout's ids 0\.\.10",
        ),
        ({"flat": True}, [[9, 0, 6, 9, 5, 10]], r"tokens\[0, 3\] = 9: the begin token inside"),
        (
            {"delays": (0, 1)},
            [[[5, 0, 1, 6, 4], [5, 4, 2, -1, 6]]],
            r"tokens\[0, 1, 3\] = -1: outside",
        ),
        # In the frame that ends the item, the other levels must still be codes or specials.
        (
            {"delays": (0, 1)},
            [[[5, 0, 6, 4, 4], [5, 4, 2, 5, 4]]],
            r"tokens\[0, 1, 3\] = 5: the begin",
        ),
        (
            {"flat": True, "offset": 100},
            [[109, 100, 3, 110]],
            r"tokens\[0, 2\] = 3: outside this layout's ids 100\.\.110",
        ),
    ],
)
def test_wrong_tokens_before_the_end_are_refused_naming_their_position(kwargs, tokens, where) -> None:
    with pytest.raises(ValueError, match=where):
        TokenLayout(2, 4, **kwargs).to_codes(T(tokens))


def test_offset_shares_one_vocabulary_with_text() -> None:
    text = 32000  # a text tokenizer's vocabulary comes first
    for flat in (False, True):
        base = TokenLayout(3, 8, flat=flat, delays=() if flat else (0, 1, 1))
        shifted = TokenLayout(3, 8, flat=flat, delays=base.delays, offset=text)
        codes, lengths = torch.randint(0, 8, (2, 3, 5)), T([5, 2])
        tokens = shifted.to_tokens(codes, lengths)
        assert torch.equal(tokens, base.to_tokens(codes, lengths) + text)
        assert int(tokens.min()) >= text and int(tokens.max()) < shifted.vocab_end == text + base.vocab_size
        back = shifted.to_codes(tokens)
        assert torch.equal(back.frame_lengths, lengths) and torch.equal(
            back.codes, mask_frames(codes, lengths, 0)
        )
        assert shifted.specials == {name: i + text for name, i in base.specials.items()}
        assert shifted.offsets == tuple(o + text for o in base.offsets)
        # The ranges table covers every id of the layout exactly once (levels share in parallel).
        ids = sorted({i for r in shifted.ranges.values() for i in r})
        assert ids == list(range(text, shifted.vocab_end))
        assert f"{text}..{text + 7}" in shifted.describe() and "pad" in shifted.describe()
    with pytest.raises(ValueError, match="offset"):
        TokenLayout(2, 4, offset=-1)


@pytest.mark.parametrize(
    "dtype", [torch.uint8, torch.int16, torch.uint16, torch.int32, torch.uint32, torch.uint64]
)
def test_tokens_and_codes_of_any_integer_dtype(dtype: torch.dtype) -> None:
    for layout in (TokenLayout(2, 4, delays=(0, 1)), TokenLayout(2, 4, flat=True)):
        tokens = layout.to_tokens(CODES.to(dtype), LENGTHS)
        assert torch.equal(tokens, layout.to_tokens(CODES, LENGTHS))
        back = layout.to_codes(tokens.to(dtype))
        assert torch.equal(back.frame_lengths, LENGTHS)
    assert torch.equal(unflatten_tokens(flatten_codes(CODES.to(dtype), 4).to(dtype), 2, 4), CODES)


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
    with pytest.raises(ValueError, match="item 0 do not start with the begin token"):
        layout.to_codes(tokens[..., 1:])
    with pytest.raises(ValueError, match="item 0 do not start with the begin token"):
        layout.to_codes(tokens[..., :0])
    with pytest.raises(ValueError, match=r"item 1 do not start"):
        layout.to_codes(torch.cat([tokens[:1], tokens[1:] + 1]))
    with pytest.raises(ValueError, match="dimensions"):
        layout.to_codes(tokens[0])
    with pytest.raises(ValueError, match="3 streams"):
        layout.to_codes(torch.cat([tokens, tokens[:, :1]], dim=1))


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
