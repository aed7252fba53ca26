"""Golden values: each bundled model's codes and decoded audio on its example clip are pinned
(every bundled model: users hold token files of each).

A change of the weights or of the numerics changes how every existing token file decodes; it
must be deliberate.  After retraining, regenerate with ``python tests/golden/make_golden.py``
and commit the new golden files with the new weights.
"""

from __future__ import annotations

import json

import pytest
import torch

from codec import Codec
from codec.pretrained import available
from codec.tokenfile import read_codes
from tests.golden import make_golden

REGENERATE = "if the bundled model was retrained on purpose, run: python tests/golden/make_golden.py NAME"


@pytest.fixture(scope="module", params=make_golden.MODELS)
def model(request: pytest.FixtureRequest) -> str:
    if request.param not in available():
        pytest.skip("no bundled weights")
    return request.param


@pytest.fixture(scope="module")
def codec(model: str) -> Codec:
    return Codec.from_pretrained(model)


@pytest.fixture(scope="module")
def golden(model: str) -> dict:
    return json.loads(make_golden.summary_file(model).read_text())


def test_the_default_model_is_pinned() -> None:
    assert make_golden.MODELS[0] == make_golden.MODEL


def test_every_bundled_model_is_pinned() -> None:
    assert set(available()) <= set(make_golden.MODELS)


def test_golden_values_belong_to_the_bundled_weights(model: str, codec: Codec, golden: dict) -> None:
    assert golden["fingerprint"] == codec.fingerprint, f"the bundled weights changed; {REGENERATE}"
    assert read_codes(make_golden.codes_file(model)).fingerprint == codec.fingerprint, REGENERATE


def test_example_clip_encodes_to_the_golden_codes(model: str, codec: Codec, golden: dict) -> None:
    wav, sr = make_golden.example(model)
    codes = codec.encode(wav, sr)
    want = read_codes(make_golden.codes_file(model))
    assert codes.lengths.tolist() == want.lengths.tolist() == [golden["num_samples"]]
    differ = int((codes.codes != want.codes).sum())
    # Exact on the machine that made them; another CPU's matrix kernels may round a near-tie
    # the other way, which flips a handful of codes.  A numerics change flips far more.
    assert differ <= codes.codes.numel() // 500, (
        f"{differ} of {codes.codes.numel()} codes changed; {REGENERATE}"
    )


def test_golden_codes_decode_to_the_golden_audio(model: str, codec: Codec, golden: dict) -> None:
    wav = codec.decode(read_codes(make_golden.codes_file(model)))[0, 0]
    got = make_golden.summarize(wav, codec.hop_length)
    torch.testing.assert_close(
        torch.tensor(got["frame_rms"]),
        torch.tensor(golden["frame_rms"]),
        atol=1e-6,
        rtol=2e-5,
        msg=REGENERATE,
    )
    torch.testing.assert_close(
        torch.tensor(got["head"]), torch.tensor(golden["head"]), atol=1e-6, rtol=2e-5, msg=REGENERATE
    )
