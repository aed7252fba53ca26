"""Each codec adapter on tiny inputs: lengths, rates, code shapes and bitrates, and the SPEC grammar."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.bench.adapters import SpecError
from codec.bench.registry import build_adapters, parse_spec
from codec.checkpoint import save_model
from codec.demo import example_path


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    wav, _ = sf.read(example_path(), dtype="float32")
    return wav[:16000]  # one second of real speech at 16 kHz


@pytest.fixture(scope="module")
def debug_dir(debug_codec, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("models") / "debug"
    save_model(debug_codec.model, folder)
    return str(folder)


def lag(a: np.ndarray, b: np.ndarray, span: int = 40) -> int:
    """Delay of ``a`` against ``b`` (samples) at the cross-correlation peak."""
    mid = slice(span, len(b) - span)
    return max(range(-span, span + 1), key=lambda s: float(np.dot(np.roll(a, -s)[mid], b[mid])))


def test_spec_grammar():
    assert parse_spec("ours:speech_16k@1.5,3") == parse_spec("OURS:speech_16k@1.5, 3")
    spec = parse_spec("opus", default_kbps=(6.0,))
    assert (spec.kind, spec.model, spec.kbps) == ("opus", None, (6.0,))
    for bad, words in [("vorbis@6", "unknown codec"), ("opus@six", "numbers"), ("opus", "no bitrate"),
                       ("opus@-3", "positive")]:  # fmt: skip
        with pytest.raises(SpecError, match=words):
            parse_spec(bad)


def test_ours_round_trip_and_bitrates(debug_dir, debug_codec, clip):
    adapters = build_adapters(parse_spec(f"ours:{debug_dir}@0.6,2.4"))
    assert [a.kbps for a in adapters] == [0.6, 2.4] and adapters[0].key != adapters[1].key
    for a, k in zip(adapters, (1, 4), strict=True):
        out, payload = a.round_trip(clip)
        assert out.shape == clip.shape and out.dtype == np.float32
        frames = math.ceil(clip.shape[0] / debug_codec.hop_length)
        assert payload.codes.shape == (k, frames) and payload.codes.max() < a.codebook_size
        assert payload.bits / (clip.shape[0] / a.sample_rate) == pytest.approx(a.kbps * 1000)
        assert a.spec == f"ours:{debug_dir}@{a.kbps:g}"
    with pytest.raises(SpecError, match=r"valid kbps: 0\.6, 1\.2, 1\.8, 2\.4"):
        build_adapters(parse_spec(f"ours:{debug_dir}@1"))
    with pytest.raises(SpecError, match="no such model directory"):
        build_adapters(parse_spec("ours:/nonexistent/model@1"))


def test_lyra_bitrates_codes_and_alignment(clip):
    adapters = build_adapters(parse_spec("lyra@3.2,9.2"))
    for a, k in zip(adapters, (16, 46), strict=True):
        out, payload = a.round_trip(clip)
        assert out.shape == clip.shape
        assert payload.codes.shape == (k, 50) and payload.codes.min() >= 0 and payload.codes.max() < 16
        assert payload.bits / 1.0 == pytest.approx(a.kbps * 1000)
    assert lag(out, clip) == 0  # the flush frames leave the decoder's output aligned with the input
    again, payload2 = adapters[1].round_trip(clip)  # fresh interpreters per file: no state carried over
    assert np.array_equal(again, out) and np.array_equal(payload2.codes, payload.codes)
    with pytest.raises(SpecError, match=r"multiple of 0\.2"):
        build_adapters(parse_spec("lyra@3.3"))


def test_opus_achieved_bitrate_is_measured(clip):
    long = np.tile(clip, 8)  # 8 s, so the Ogg headers weigh little
    low, high = build_adapters(parse_spec("opus@6,12"))
    rates = []
    for a in (low, high):
        out, payload = a.round_trip(long)
        assert out.shape == long.shape and payload.codes is None
        rates.append(payload.bits / 8.0 / 1000)
    assert lag(out, long) == 0
    assert 5.5 < rates[0] < 9 and 10.5 < rates[1] < 15 and rates[0] < rates[1]
    with pytest.raises(SpecError, match="8000, 12000"):
        build_adapters(parse_spec("opus:44100@6"))


# kind -> (kbps of the bench spec, codebooks it is): the tiny models of tests/backends/tiny.py
PEER_RATES = {"encodec": (1.5, 2), "dac": (0.6, 2), "mimi": (0.15, 2), "snac": (0.2109375, 3),
              "speechtokenizer": (0.6, 2)}  # fmt: skip


@pytest.mark.parametrize("kind", list(PEER_RATES))
def test_peers_go_through_their_backend(kind, tmp_path, clip):
    from tests.backends.tiny import save_tiny

    folder = save_tiny(kind, tmp_path / kind)  # loaded back the way a hub name would be
    kbps, k = PEER_RATES[kind]
    (a,) = build_adapters(parse_spec(f"{kind}:{folder}@{kbps}"))
    backend = a.backend
    assert a.kind == kind and a.sample_rate == backend.sample_rate and a.kbps == pytest.approx(kbps)
    assert a.streaming == (kind == "mimi") and a.parameters() == backend.num_parameters()
    wav = np.interp(np.arange(a.sample_rate) * 16000 / a.sample_rate, np.arange(16000), clip).astype(
        np.float32
    )
    out, payload = a.round_trip(wav)
    assert out.shape == wav.shape and np.isfinite(out).all()
    frames = math.ceil(wav.shape[0] / backend.hop_length)
    assert payload.codes.shape == (k, frames) and payload.codes.max() < a.codebook_size
    assert payload.bits == frames * k * math.ceil(math.log2(a.codebook_size))
    # The bench codes exactly what the tokenizer API codes.
    direct = backend.encode(torch.from_numpy(wav), a.sample_rate, num_codebooks=k)
    assert np.array_equal(payload.codes, direct.codes[0].numpy())
    batch = a.decode_batch(a.encode_batch(torch.from_numpy(np.stack([wav, wav]))))
    assert batch.shape == (2, wav.shape[0])
    with pytest.raises(SpecError, match="valid kbps"):
        build_adapters(parse_spec(f"{kind}:{folder}@0.01"))


def test_peer_without_the_model_is_a_clear_error(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(SpecError, match=r"dac:.*missing: no such folder"):
        build_adapters(parse_spec(f"dac:{tmp_path / 'missing'}@6"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"dac:.*empty: cannot load the model"):
        build_adapters(parse_spec(f"dac:{tmp_path / 'empty'}@6"))
