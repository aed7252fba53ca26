"""Streaming building blocks: any chunking equals one call from a zero state."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from codec.modules.conv import FrameConv1d
from codec.modules.convnext import ConvNeXtTrunk
from codec.modules.linear import Linear
from codec.modules.spectral import ISTFTHead, STFTFrontend

CHUNKS = [1, 2, 3, 7, 4, 13]


def _chunked(fn, x: torch.Tensor, dim: int, unit: int = 1) -> torch.Tensor:
    outs, pos = [], 0
    for c in CHUNKS:
        outs.append(fn(x.narrow(dim, pos, c * unit)))
        pos += c * unit
    return torch.cat(outs, dim=dim)


@torch.no_grad()
def test_causal_depthwise_conv_streams_bit_exactly() -> None:
    conv = FrameConv1d(8, 5, causal=True).eval()
    x = torch.randn(2, sum(CHUNKS), 8)
    state = conv.init_state(2, x.device, x.dtype)
    assert torch.equal(_chunked(lambda c: conv(c, state), x, 1), conv(x))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("k", [4, 7])
def test_depthwise_conv_matches_library_conv(causal: bool, k: int) -> None:
    conv = FrameConv1d(6, k, causal=causal).eval()
    with torch.no_grad():
        conv.bias.normal_()  # zero at init: a dropped bias would go unseen
    x = torch.randn(3, 20, 6)
    left = k - 1 if causal else (k - 1) // 2
    with torch.no_grad():
        ref = F.conv1d(
            F.pad(x.transpose(1, 2), (left, k - 1 - left)), conv.weight[:, None], conv.bias, groups=6
        )
        torch.testing.assert_close(conv(x), ref.transpose(1, 2), atol=1e-6, rtol=1e-6)
    # The training path (another implementation) runs only in training mode with gradients on.
    conv.train()
    out = conv(x.requires_grad_())
    assert out.requires_grad
    torch.testing.assert_close(out.detach(), ref.transpose(1, 2), atol=1e-6, rtol=1e-6)


def test_causal_conv_training_path_never_reads_the_future() -> None:
    conv = FrameConv1d(4, 3, causal=True).train()
    x = torch.randn(1, 10, 4, requires_grad=True)
    conv(x)[:, 5].sum().backward()
    assert x.grad[:, 6:].abs().max() == 0, "output frame 5 depends on later input frames"
    assert x.grad[:, 3:6].abs().min() > 0 and x.grad[:, :3].abs().max() == 0


@torch.no_grad()
def test_depthwise_conv_sees_weight_updates() -> None:
    # The inference taps are cached; an optimiser step or a loaded checkpoint must reach them.
    conv = FrameConv1d(4, 3, causal=True).eval()
    x = torch.randn(1, 5, 4)
    before = conv(x)
    conv.weight.mul_(2.0)
    torch.testing.assert_close(conv(x) - conv.bias, 2 * (before - conv.bias))
    other = FrameConv1d(4, 3, causal=True).eval()
    conv.load_state_dict(other.state_dict())
    assert torch.equal(conv(x), other(x))


@torch.no_grad()
def test_causal_conv_never_reads_the_future() -> None:
    conv = FrameConv1d(4, 3, causal=True).eval()
    x = torch.randn(1, 10, 4)
    y = x.clone()
    y[:, 6:] = torch.randn(1, 4, 4)
    assert torch.equal(conv(x)[:, :6], conv(y)[:, :6])


# Layers with matrix products agree to float precision, not bit for bit: BLAS takes another
# kernel for products with very few rows (1-3 frames), which changes the summation order.
TOL = {"atol": 1e-5, "rtol": 1e-5}


@torch.no_grad()
def test_trunk_streams_and_reset_restores_a_fresh_state() -> None:
    trunk = ConvNeXtTrunk(16, 32, 2, 5, causal=True).eval()
    x = torch.randn(2, sum(CHUNKS), 16)
    state = trunk.init_state(2, x.device, x.dtype)
    torch.testing.assert_close(_chunked(lambda c: trunk(c, state), x, 1), trunk(x), **TOL)
    state.reset(torch.tensor([True, False]))
    fresh = trunk(x[:1, :4])
    out = trunk(x[:, :4], state)
    torch.testing.assert_close(out[0], fresh[0], **TOL)
    assert (out[1] - fresh[0]).abs().max() > 1e-3  # item 1 kept its history


@torch.no_grad()
def test_stft_frontend_streams() -> None:
    front = STFTFrontend(40, 12).eval()
    wav = torch.randn(2, 40 * sum(CHUNKS))
    state = front.init_state(2, wav.device, wav.dtype)
    torch.testing.assert_close(_chunked(lambda c: front(c, state), wav, 1, 40), front(wav), **TOL)


@torch.no_grad()
def test_istft_head_overlap_add_streams() -> None:
    head = ISTFTHead(12, 40).eval()
    x = torch.randn(2, sum(CHUNKS), 12)
    whole_state = head.init_state(2, x.device, x.dtype)
    whole = head(x, whole_state)
    state = head.init_state(2, x.device, x.dtype)
    torch.testing.assert_close(_chunked(lambda c: head(c, state), x, 1), whole, atol=1e-6, rtol=0)
    torch.testing.assert_close(state.tail, whole_state.tail, atol=1e-6, rtol=0)


def test_hann_windows_at_half_overlap_sum_to_one() -> None:
    # The iSTFT head relies on this: a constant spectrum overlap-adds to a constant level.
    head = ISTFTHead(4, 16)
    w = head.window
    torch.testing.assert_close(w[:16] + w[16:], torch.ones(16))


def test_linear_matches_reference_for_any_rank() -> None:
    lin = Linear(5, 3)
    x = torch.randn(2, 4, 5)
    torch.testing.assert_close(lin(x), x @ lin.weight + lin.bias)
    assert lin(torch.randn(7, 5)).shape == (7, 3)


def test_initialisation_scales() -> None:
    """Initial weights keep activations at unit scale (a wrong scale trains badly or diverges)."""
    torch.manual_seed(0)
    lin = Linear(400, 300)
    bound = 1 / 400**0.5
    for t in (lin.weight, lin.bias):
        assert t.abs().max() <= bound and t.min() < -0.9 * bound and t.max() > 0.9 * bound
    conv = FrameConv1d(512, 9, causal=True)
    assert 0.9 < conv.weight.std().item() * 9**0.5 < 1.1 and conv.bias.abs().max() == 0
    block = ConvNeXtTrunk(16, 32, 1, 3, causal=True).blocks[0]
    assert torch.equal(block.gamma, torch.full((16,), 1 / 8)) and block.norm.eps == 1e-6
