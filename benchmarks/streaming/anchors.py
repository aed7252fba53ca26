"""Peer codecs timed beside ours in the streaming benchmark: Mimi and EnCodec 24 kHz.

Both are built with random weights (nothing is downloaded; a model's speed does not depend on
its weight values) and run under the same ``torch.set_num_threads`` setting as our model, in
the same process.  They are optional: each function returns a row whose ``note`` says why it
could not run when its package is missing or fails, and the benchmark carries on.

The packages live in a separate virtual environment (see ``benchmarks/peers/setup_venv.sh``):
they are never dependencies of ``codec``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch

from codec.bench import harness

MIMI = "Mimi (moshi {version}), 8 codebooks, 1.1 kbps"
ENCODEC = "EnCodec 24 kHz (encodec {version}), 8 codebooks, 6 kbps"


def _missing(package: str, name: str, threads: int) -> harness.FrameLatency:
    return harness.FrameLatency(
        name.format(version="?"),
        threads,
        float("nan"),
        None,
        None,
        float("nan"),
        f"skipped: the `{package}` package is not installed in this environment "
        "(see benchmarks/peers/setup_venv.sh)",
    )


def _failed(name: str, threads: int, err: Exception) -> harness.FrameLatency:
    return harness.FrameLatency(
        name, threads, float("nan"), None, None, float("nan"), f"failed: {type(err).__name__}: {err}"
    )


def _noise_frames(count: int, frame: int, seed: int = 0) -> torch.Tensor:
    """``[count, 1, 1, frame]`` deterministic noise frames (values do not change the compute)."""
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(count, 1, 1, frame, generator=gen)


def build_mimi() -> torch.nn.Module:
    """Mimi with random weights: ``get_mimi(None, ...)`` loads no checkpoint."""
    from moshi.models.loaders import get_mimi

    return get_mimi(None, device="cpu").eval()


def mimi_latency(
    threads: int, frames: int, warmup: int, model: torch.nn.Module | None = None
) -> harness.FrameLatency:
    """Per-frame streaming encode and decode of Mimi inside ``with mimi.streaming(1)``.

    One step is one 80 ms frame (1920 samples at 24 kHz): ``encode`` returns ``[1, K, 1]``
    codes, ``decode`` of those codes returns 1920 samples.  Mimi's streaming decoder emits each
    frame's audio as soon as its codes arrive, so its algorithmic latency is the frame.
    """
    if importlib.util.find_spec("moshi") is None:
        return _missing("moshi", MIMI, threads)
    name = MIMI.format(version=harness.package_version("moshi"))
    try:
        harness.set_threads(threads)
        mimi = model if model is not None else build_mimi()
        frame = int(mimi.frame_size)
        chunks = _noise_frames(warmup + frames, frame)
        with torch.no_grad(), mimi.streaming(1):
            enc, dec = harness.time_frames(lambda i: mimi.encode(chunks[i]), mimi.decode, frames, warmup)
        frame_s = frame / mimi.sample_rate
        return harness.FrameLatency(name, threads, frame_s, enc, dec, frame_s)
    except Exception as err:  # a peer failing must not stop our own measurement
        return _failed(name, threads, err)


def build_encodec() -> torch.nn.Module:
    """EnCodec 24 kHz with random weights (``pretrained=False``), at 6 kbps (8 codebooks)."""
    from encodec import EncodecModel

    model = EncodecModel.encodec_model_24khz(pretrained=False).eval()
    model.set_target_bandwidth(6.0)
    return model


ENCODEC_NOTE = (
    "EnCodec's package keeps no streaming state: each timed call encodes (decodes) one fresh "
    "320-sample (one-frame) chunk from zero state; the convs and LSTM see no past context, so "
    "this is the compute of a one-frame step, not a correct stream"
)


def encodec_latency(
    threads: int, frames: int, warmup: int, model: torch.nn.Module | None = None
) -> harness.FrameLatency:
    """Per-frame encode and decode of EnCodec 24 kHz, one-frame chunks (see :data:`ENCODEC_NOTE`)."""
    if importlib.util.find_spec("encodec") is None:
        return _missing("encodec", ENCODEC, threads)
    name = ENCODEC.format(version=harness.package_version("encodec"))
    try:
        harness.set_threads(threads)
        encodec = model if model is not None else build_encodec()
        frame = int(encodec.sample_rate // encodec.frame_rate)
        chunks = _noise_frames(warmup + frames, frame)
        encode: Callable[[int], object] = lambda i: encodec.encode(chunks[i])  # noqa: E731
        with torch.no_grad():
            enc, dec = harness.time_frames(encode, encodec.decode, frames, warmup)
        frame_s = frame / encodec.sample_rate
        # The 24 kHz model is causal: a frame is final once its samples have arrived.
        return harness.FrameLatency(name, threads, frame_s, enc, dec, frame_s, ENCODEC_NOTE)
    except Exception as err:
        return _failed(name, threads, err)
