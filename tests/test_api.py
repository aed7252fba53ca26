"""The tokenizer API and its promises: batch invariance, determinism, variable bitrate."""

from __future__ import annotations

import pytest
import torch

from codec import Codec, Codes, load_audio, metrics, pretrained
from codec.audio import AudioError
from codec.checkpoint import save_model
from codec.pretrained import NoBundledModelError, available
from tests.conftest import speech_like

LENGTHS = [16000, 3000, 9001, 161, 1, 330]


def _batch(lengths: list[int], channels: int = 1, seed: int = 0) -> torch.Tensor:
    t = max(lengths)
    wav = torch.zeros(len(lengths), channels, t)
    for i, n in enumerate(lengths):
        wav[i, :, :n] = speech_like(n, seed=seed + i, channels=channels)
        # Garbage in the padding must not matter.
        wav[i, :, n:] = 0.5
    return wav


@pytest.mark.parametrize("model", ["debug_codec", "noncausal_codec"])
@pytest.mark.parametrize("channels", [1, 2])
def test_batch_invariance_codes_and_samples(request, model: str, channels: int) -> None:
    codec: Codec = request.getfixturevalue(model)
    wav = _batch(LENGTHS, channels)
    codes = codec.encode(wav, 16000, lengths=LENGTHS)
    decoded = codec.decode(codes)
    assert decoded.shape == (len(LENGTHS), channels, max(LENGTHS))
    for i, n in enumerate(LENGTHS):
        alone = codec.encode(wav[i : i + 1, :, :n], 16000)
        assert torch.equal(alone.codes, codes.item(i).codes), f"item {i}: codes differ from the batch"
        assert torch.equal(codec.decode(alone), decoded[i : i + 1, :, :n]), f"item {i}: samples differ"
        assert decoded[i, :, n:].abs().max() == 0 if n < max(LENGTHS) else True


def test_batch_invariance_with_resampling(debug_codec: Codec) -> None:
    lengths = [44100, 20000, 777]
    wav = _batch(lengths, channels=2)
    codes = debug_codec.encode(wav, 44100, lengths=lengths)
    assert codes.original_lengths.tolist() == lengths
    assert codes.lengths.tolist() == [16000, 7257, 282]
    for i, n in enumerate(lengths):
        assert torch.equal(debug_codec.encode(wav[i : i + 1, :, :n], 44100).codes, codes.item(i).codes)
    restored = debug_codec.decode(codes, sample_rate=44100)
    assert restored.shape == (3, 2, 44100)
    assert restored[2, :, 777:].abs().max() == 0


def test_determinism_across_runs_and_batch_sizes(debug_codec: Codec) -> None:
    wav = _batch([8000] * 4, seed=3)
    first = debug_codec.encode(wav, 16000).codes
    assert torch.equal(first, debug_codec.encode(wav, 16000).codes)
    assert torch.equal(first[1:3], debug_codec.encode(wav[1:3], 16000).codes)
    assert torch.equal(
        debug_codec.decode(debug_codec.encode(wav, 16000)), debug_codec.decode(Codes(**_fields(first)))
    )


def _fields(codes: torch.Tensor) -> dict:
    return {
        "codes": codes,
        "lengths": torch.full((codes.shape[0],), 8000),
        "sample_rate": 16000,
        "hop_length": 160,
        "codebook_size": 64,
    }


def test_first_k_codebooks_are_a_valid_lower_bitrate_encoding(debug_codec: Codec) -> None:
    wav = _batch([4000, 2500])
    full = debug_codec.encode(wav, 16000)
    for k in range(1, debug_codec.total_codebooks + 1):
        low = debug_codec.encode(wav, 16000, num_codebooks=k)
        assert low.num_codebooks == k
        assert torch.equal(low.codes, full.codes[:, :k])
        assert torch.equal(debug_codec.decode(low), debug_codec.decode(full.truncate(k)))
        assert low.bitrate() == pytest.approx(debug_codec.bitrate(k))


def test_properties_and_bitrate() -> None:
    codec = Codec.from_config("speech_16k")
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate) == (16000, 320, 50.0)
    assert (codec.codebook_size, codec.total_codebooks) == (1024, 12)
    assert codec.bitrate() == 6000 and codec.bitrate(1) == 500 and codec.bitrate(3) == 1500
    assert codec.lookahead == 320


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"wav": torch.zeros(2, 100)}, "shape"),
        ({"wav": torch.zeros(1, 1, 0)}, "empty"),
        ({"wav": torch.full((1, 1, 100), float("nan"))}, "NaN"),
        ({"wav": torch.zeros(1, 1, 100, dtype=torch.int16)}, "float"),
        ({"lengths": [101]}, "lengths"),
        ({"lengths": [0]}, "lengths"),
        ({"lengths": [5, 5]}, "lengths"),
        ({"num_codebooks": 0}, "num_codebooks"),
        ({"num_codebooks": 99}, "num_codebooks"),
        ({"sample_rate": 0}, "sample_rate"),
    ],
)
def test_bad_encode_input_is_a_clear_error(debug_codec: Codec, kwargs: dict, fragment: str) -> None:
    args = {"wav": torch.zeros(1, 1, 100), "sample_rate": 16000} | kwargs
    with pytest.raises((AudioError, ValueError), match=fragment):
        debug_codec.encode(**args)


def test_codes_from_another_model_are_refused(debug_codec: Codec, noncausal_codec: Codec) -> None:
    codes = noncausal_codec.encode(torch.zeros(1, 1, 800), 16000)
    with pytest.raises(ValueError, match="made by model"):
        debug_codec.decode(codes)


def test_out_of_range_codes_are_refused(debug_codec: Codec) -> None:
    codes = debug_codec.encode(torch.zeros(1, 1, 800), 16000)
    bad = Codes(**(codes.__dict__ | {"codes": codes.codes + 1000}))
    with pytest.raises(ValueError, match="out of range"):
        debug_codec.decode(bad)


def test_from_pretrained_directory_round_trip(tmp_path, debug_codec: Codec) -> None:
    save_model(debug_codec.model, tmp_path / "m")
    loaded = Codec.from_pretrained(tmp_path / "m")
    wav = speech_like(3000)[None]
    assert torch.equal(loaded.encode(wav, 16000).codes, debug_codec.encode(wav, 16000).codes)
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        Codec.from_pretrained(tmp_path / "missing")


def test_missing_bundled_model_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pretrained, "_HERE", tmp_path)  # an installation without weights
    with pytest.raises(NoBundledModelError, match="no bundled model exists yet"):
        Codec.from_pretrained()
    with pytest.raises(NoBundledModelError, match="no bundled model named 'nope'"):
        Codec.from_pretrained("nope")


@pytest.mark.parametrize("name", ["..", "../speech_16k", "/etc", "speech_16k/../speech_16k"])
def test_bundled_names_never_leave_the_bundle_folder(tmp_path, monkeypatch, name) -> None:
    # A folder with weights outside the bundle must not be reachable through a bundled name.
    (tmp_path / "speech_16k").mkdir()
    (tmp_path / "speech_16k" / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(pretrained, "_HERE", tmp_path / "bundle")
    (tmp_path / "bundle").mkdir()
    with pytest.raises(NoBundledModelError, match="no bundled model named"):
        pretrained.model_dir(name)


@pytest.mark.parametrize("name", [None, "lyra_rvq_16k_v2", "lyra_rvq_16k", "speech_16k", "speech_16k_v2"])
def test_bundled_model_is_the_trained_one(name: str | None) -> None:
    # Guards against shipping random or mismatched weights: the model must reconstruct its
    # held-out example clip (mel distance at 6 kbps when exported: 0.13 for speech_16k, 0.16 for
    # lyra_rvq_16k; random weights give about 1.0).
    if (name or pretrained.DEFAULT_MODEL) not in available():
        pytest.skip("no bundled weights in this checkout")
    codec = Codec.from_pretrained(name)
    assert codec.sample_rate == 16000 and codec.total_codebooks == 12 and codec.model.cfg.causal
    wav, sr = load_audio(pretrained.model_dir(name) / "example.flac")
    out = codec.decode(codec.encode(wav[None], sample_rate=sr))[0, 0]
    assert metrics.mel_distance(wav[0], out, sr) < 0.2


def test_outputs_train_an_embedding_and_a_loss(debug_codec: Codec) -> None:
    """Tokenising on the fly for LM training: codes index an embedding that gets gradients."""
    codes = debug_codec.encode(speech_like(2000)[None], 16000)
    assert not codes.codes.is_inference() and not codes.codes.requires_grad
    embed = torch.nn.Embedding(debug_codec.codebook_size, 4)
    embed(codes.codes).sum().backward()
    assert embed.weight.grad is not None and embed.weight.grad.abs().sum() > 0
    gain = torch.ones((), requires_grad=True)
    wav = debug_codec.decode(codes)
    assert not wav.is_inference()
    (gain * wav).pow(2).sum().backward()
    assert gain.grad is not None and gain.grad > 0
    # Nothing is tracked through the model itself.
    assert all(p.grad is None for p in debug_codec.model.parameters())


def test_outputs_go_to_the_inputs_device_or_the_one_asked(debug_codec: Codec) -> None:
    wav = speech_like(1000)[None]
    codes = debug_codec.encode(wav, 16000)
    assert codes.codes.device == wav.device
    assert debug_codec.encode(wav, 16000, device="meta").codes.device.type == "meta"
    assert debug_codec.decode(codes).device == wav.device
    assert debug_codec.decode(codes, device="meta").device.type == "meta"
    assert debug_codec.decode(codes, sample_rate=8000, device="meta").device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_outputs_stay_on_the_gpu(debug_codec: Codec) -> None:
    codec = Codec(debug_codec.model).to("cuda")
    try:
        wav = speech_like(1000)[None].cuda()
        codes = codec.encode(wav, 16000)
        assert codes.codes.is_cuda and codec.decode(codes).is_cuda
        assert not codec.decode(codes.to("cpu")).is_cuda
    finally:
        codec.to("cpu")


def test_rows_that_are_not_whole_items_are_refused(debug_codec: Codec) -> None:
    codes = debug_codec.encode(torch.zeros(1, 2, 800), 16000)
    rows = torch.cat([codes.codes, codes.codes[:1]])
    with pytest.raises(ValueError, match="rows"):
        Codes(**(codes.__dict__ | {"codes": rows}))
    # Decoding checks again, for codes changed after they were made.
    bad = debug_codec.encode(torch.zeros(1, 2, 800), 16000)
    object.__setattr__(bad, "codes", rows)
    with pytest.raises(ValueError, match="rows"):
        debug_codec.decode(bad)
