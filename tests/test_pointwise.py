"""Every value of the models' elementwise functions is the same wherever it lies in a tensor.

PyTorch's CPU kernels compute the last values of each thread's share with scalar code; these
tests place the same values at the start, middle and end of tensors and run them on 1-8
threads, and compare bit for bit (a model-level difference of one bit can become another code).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

from codec import Codec
from codec.modules.convnext import _gelu
from codec.modules.pointwise import CHECKED_TORCH, same_everywhere
from codec.modules.spectral import _compression
from tests.conftest import speech_like, threads

THREADS = [1, 2, 3, 5, 8]
# (start, stop) rows: the whole tensor, a prefix, windows at odd offsets, single rows, the end,
# and 640 rows at two offsets (whole pairs of vectors for most thread counts: the direct path).
SLICES = [(0, 700), (0, 496), (13, 511), (247, 248), (100, 357), (699, 700), (1, 700), (0, 640), (60, 700)]


def _inputs(name: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if name == "compression":  # magnitudes over a 120 dB range, 161 bins (odd: rows cross vectors)
        return torch.rand(700, 161, generator=gen) * torch.logspace(-6, 0, 700)[:, None]
    return torch.randn(700, 768, generator=gen) * 3  # gelu: rows of whole vectors


FUNCTIONS = {"compression": _compression, "gelu": _gelu}


@pytest.mark.parametrize("name", list(FUNCTIONS))
@torch.no_grad()
def test_a_value_does_not_depend_on_its_place_or_the_thread_count(name: str) -> None:
    fn, x = FUNCTIONS[name], _inputs(name)
    with threads(1):
        reference = same_everywhere(fn, x)
    for n in THREADS:
        with threads(n):
            for start, stop in SLICES:
                got = same_everywhere(fn, x[start:stop])
                assert torch.equal(got, reference[start:stop]), f"{name}: rows {start}:{stop}, {n} threads"


@pytest.mark.parametrize(
    "fn",
    [torch.abs, torch.log, torch.exp, torch.cos, lambda x: torch.polar(x, 7 * x)],
    ids=["abs", "log", "exp", "cos", "polar"],
)
@torch.no_grad()
def test_the_models_other_elementwise_functions_agree_in_scalar_and_vector_code(fn) -> None:
    """Why only pow and GELU go through same_everywhere: the rest give the same value in a
    scalar tail (a slice of 1-31 values) as inside the vector loop."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8192, dtype=torch.complex64, generator=gen) * torch.logspace(-5, 1, 8192)
    if fn is not torch.abs:
        x = x.real.abs() + 1e-5
    whole = fn(x)
    for length in range(1, 32):
        for start in range(0, 8000, 499):
            assert torch.equal(fn(x[start : start + length]), whole[start : start + length]), (start, length)


@torch.no_grad()
def test_values_are_those_of_the_function() -> None:
    x = _inputs("compression")
    plain = _compression(x)
    same = same_everywhere(_compression, x)
    assert same.shape == x.shape and same.dtype == x.dtype
    # At most the values at the scalar tails differ, by one rounding.
    assert (same != plain).sum() < 64
    torch.testing.assert_close(same, plain, rtol=2e-7, atol=0)


def test_under_autograd_it_is_the_function_itself() -> None:
    x = _inputs("gelu")[:10].requires_grad_()
    y = same_everywhere(_gelu, x)
    y.sum().backward()
    assert torch.equal(y, _gelu(x)) and x.grad is not None


@pytest.mark.parametrize("n", [2, 5])
@torch.no_grad()
def test_encoder_output_of_a_batch_equals_each_item_alone_on_any_thread_count(
    debug_codec: Codec, n: int
) -> None:
    """The encoder's float output, not only the codes: a batch item's frames (the last one
    included, which ends the tensor when the item is alone) equal the item coded alone on one thread."""
    encoder, hop = debug_codec.model.encoder, debug_codec.hop_length
    frames = [233, 16, 101, 57]  # odd counts: frames * 161 bins end mid-vector
    wav = torch.zeros(len(frames), max(frames) * hop)
    for i, f in enumerate(frames):
        wav[i, : f * hop] = speech_like(f * hop, seed=i)[0]
    with threads(1):
        alone = [encoder(wav[i : i + 1, : f * hop]) for i, f in enumerate(frames)]
    with threads(n):
        batch = encoder(wav)
        for i, f in enumerate(frames):
            assert torch.equal(batch[i : i + 1, :f], alone[i]), f"item {i}, {n} threads: batch differs"
            assert torch.equal(encoder(wav[i : i + 1, : f * hop]), alone[i]), f"item {i}: {n} threads differ"


@torch.no_grad()
def test_decoder_output_does_not_depend_on_the_thread_count(debug_codec: Codec) -> None:
    codes = debug_codec.encode(speech_like(16000 * 2 + 77)[None], 16000)
    with threads(1):
        reference = debug_codec.decode(codes)
    for n in (2, 5):
        with threads(n):
            assert torch.equal(debug_codec.decode(codes), reference), f"{n} threads"


def test_pytorch_is_pinned_to_the_releases_whose_grain_sizes_were_checked() -> None:
    """same_everywhere relies on ATen's grain sizes, which a PyTorch release may change: the
    package allows no release after the one they were checked on, and the installed one is
    among those (so the tests above ran on a release the pin allows)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in map(Requirement, project["dependencies"]) if r.name == "torch")
    major, minor = CHECKED_TORCH
    assert f"{major}.{minor}.99" in torch_req.specifier
    assert f"{major}.{minor + 1}.0" not in torch_req.specifier
    assert Version(torch.__version__.split("+")[0]) in torch_req.specifier
