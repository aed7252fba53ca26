"""Codes container and LM helpers."""

from __future__ import annotations

import pytest
import torch

from codec.tokens import Codes, apply_delay_pattern, flatten_codes, undo_delay_pattern, unflatten_tokens


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


def test_delay_pattern_round_trip() -> None:
    codes = torch.randint(0, 8, (2, 4, 6))
    delayed = apply_delay_pattern(codes, pad_id=-1)
    assert delayed.shape == (2, 4, 9)
    assert (delayed[:, 3, :3] == -1).all() and torch.equal(delayed[:, 3, 3:], codes[:, 3])
    assert torch.equal(undo_delay_pattern(delayed), codes)


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
