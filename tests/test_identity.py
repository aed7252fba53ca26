"""Model identity: weights fingerprints in model directories, codes and token files; old files.

A version-1 token file (written before fingerprints) is rebuilt byte for byte by
:func:`_v1_file`, checked against a real one (``golden/legacy_v1.cdc``, written by the version-1
writer), so the migration is tested on the exact old layout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from codec import Codec, Codes
from codec.checkpoint import (
    CheckpointError,
    legacy_config_hash,
    load_checkpoint,
    model_fingerprint,
    save_model,
    weights_fingerprint,
)
from codec.pipeline.tokenio import check_header
from codec.tokenfile import (
    MAGIC,
    STREAM_MAGIC,
    TokenFileError,
    TokenStreamReader,
    encode_frames,
    header_from_codes,
    read_codes,
    read_header,
    write_codes,
)
from tests.conftest import speech_like

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def codes(debug_codec: Codec) -> Codes:
    return debug_codec.encode(speech_like(3000, seed=7)[None], 16000)


def _v1_header(codes: Codes, config_hash: str) -> bytes:
    doc = {**header_from_codes(codes).to_json(), "config_hash": config_hash}
    del doc["fingerprint"]
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _v1_file(codes: Codes, config_hash: str) -> bytes:
    """A token file as the version-1 writer made it: config_hash, no fingerprint."""
    text = _v1_header(codes, config_hash)
    h = header_from_codes(codes)
    blob = MAGIC + struct.pack("<HI", 1, len(text)) + text
    blob += encode_frames(codes.codes[..., : h.num_frames], h.bits_per_code)
    return blob + struct.pack("<I", zlib.crc32(blob))


# -- model directories ---------------------------------------------------------------------------


def test_fingerprint_is_recorded_verified_and_tracks_every_weight(tmp_path: Path, debug_codec: Codec) -> None:
    folder = save_model(debug_codec.model, tmp_path / "m")
    recorded = json.loads((folder / "config.json").read_text())["fingerprint"]
    state = load_file(str(folder / "model.safetensors"))
    assert recorded == weights_fingerprint(state) == debug_codec.fingerprint
    assert len(recorded) == 64 and model_fingerprint(folder) == recorded
    # Same weights written again (another layout, other metadata): same identity.
    save_file(dict(reversed(state.items())), str(folder / "model.safetensors"), metadata={"x": "y"})
    assert load_checkpoint(folder).fingerprint == recorded
    # One changed value: another identity, and the directory no longer matches its record.
    name = sorted(state)[len(state) // 2]
    state[name].view(-1)[0] += 1e-3
    assert weights_fingerprint(state) != recorded
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"not the ones config\.json records"):
        load_checkpoint(folder)


def test_half_precision_storage_keeps_the_identity_of_the_loaded_weights(tmp_path: Path, debug_codec) -> None:
    half = save_model(debug_codec.model, tmp_path / "half", dtype=torch.float16)
    loaded = Codec.from_pretrained(half)
    assert model_fingerprint(half) == loaded.fingerprint  # what the float32 model holds
    # Written again in float32, the same loaded weights are the same model.
    assert model_fingerprint(save_model(loaded.model, tmp_path / "full")) == loaded.fingerprint
    assert loaded.fingerprint != debug_codec.fingerprint  # rounding to float16 changed weights


def test_version_1_directories_and_renames_keep_their_identity(tmp_path: Path, debug_codec: Codec) -> None:
    folder = save_model(debug_codec.model, tmp_path / "m")
    path = folder / "config.json"
    doc = json.loads(path.read_text())
    # A version-1 directory (no fingerprint), renamed, and written before a config field existed.
    doc["format_version"] = 1
    del doc["fingerprint"], doc["config"]["quantizer"]["dead_code_threshold"]
    doc["config"]["name"] = "renamed"
    path.write_text(json.dumps(doc))
    ckpt = load_checkpoint(folder)
    assert ckpt.fingerprint == debug_codec.fingerprint and ckpt.model.cfg.name == "renamed"
    renamed = Codec.from_pretrained(folder)
    assert renamed.name == "renamed" and renamed.fingerprint == debug_codec.fingerprint
    codes = debug_codec.encode(speech_like(1000)[None], 16000)
    assert torch.equal(renamed.decode(codes), debug_codec.decode(codes))
    for bad in ("abc", "G" * 64, 5):
        doc["format_version"], doc["fingerprint"] = 2, bad
        path.write_text(json.dumps(doc))
        with pytest.raises(CheckpointError, match="fingerprint"):
            load_checkpoint(folder)


# -- codes and decoding --------------------------------------------------------------------------


def test_same_config_other_weights_are_refused_naming_both_models(debug_codec: Codec, codes: Codes) -> None:
    torch.manual_seed(123)
    twin = Codec.from_config(debug_codec.config)  # same preset, other weights
    assert twin.config == debug_codec.config and twin.fingerprint != debug_codec.fingerprint
    assert codes.fingerprint == debug_codec.fingerprint
    with pytest.raises(ValueError, match="made by model") as info:
        twin.decode(codes)
    message = str(info.value)
    assert debug_codec.fingerprint[:12] in message and twin.fingerprint[:12] in message
    # A renamed copy of the same weights is the same model.
    assert torch.equal(Codec(debug_codec.model, name="another-name").decode(codes), debug_codec.decode(codes))


def test_fingerprint_follows_weight_changes(debug_config) -> None:
    torch.manual_seed(5)
    codec = Codec.from_config(debug_config)
    before = codec.fingerprint
    codes = codec.encode(speech_like(800)[None], 16000)
    with torch.no_grad():
        codec.model.decoder.proj.weight.add_(1e-3)  # e.g. a training step
    assert codec.fingerprint != before
    with pytest.raises(ValueError, match="made by model"):
        codec.decode(codes)


def test_files_and_streams_carry_the_fingerprint(tmp_path: Path, debug_codec, noncausal_codec, codes) -> None:
    path = write_codes(tmp_path / "x.cdc", codes)
    header = read_header(path)
    assert header.fingerprint == debug_codec.fingerprint and "config_hash" not in header.to_json()
    assert read_codes(path) == codes.item(0)
    check_header(debug_codec, header, path)
    with pytest.raises(TokenFileError, match=f"weights {noncausal_codec.fingerprint[:12]}"):
        check_header(noncausal_codec, header, path)


# -- version-1 token files -----------------------------------------------------------------------


def test_real_version_1_file_is_read_and_rebuilt_byte_for_byte() -> None:
    path = GOLDEN / "legacy_v1.cdc"
    old = read_codes(path)
    assert old.fingerprint == "" and old.config_hash == "3eec265aa41c1545" and old.model == "debug"
    assert old.codes.shape == (2, 3, 14) and old.original_sample_rate == 22050
    assert old.lengths.tolist() == [2177] and old.original_lengths.tolist() == [3000]
    assert _v1_file(old, old.config_hash) == path.read_bytes()


def test_version_1_files_decode_with_their_model_only(
    tmp_path: Path, debug_codec, noncausal_codec, codes
) -> None:
    path = tmp_path / "old.cdc"
    path.write_bytes(_v1_file(codes, legacy_config_hash(debug_codec.config.to_dict())))
    old = read_codes(path)
    assert old.fingerprint == "" and torch.equal(old.codes, codes.codes)
    assert torch.equal(debug_codec.decode(old), debug_codec.decode(codes))
    with pytest.raises(ValueError, match="config hash"):
        noncausal_codec.decode(old)
    # Renamed since the file was written, or a config field added since then: still decodes.
    renamed = dataclasses.replace(debug_codec.config, name="renamed")
    twin = Codec(debug_codec.model, name="renamed")
    twin._saved_config = renamed.to_dict()
    assert torch.equal(twin.decode(old), debug_codec.decode(codes))
    older = debug_codec.config.to_dict()
    del older["encoder"]["kernel_size"]
    # What the version-1 writer recorded: the hash of the config as it knew it.
    assert (
        legacy_config_hash(older)
        == hashlib.sha256(json.dumps(older, sort_keys=True).encode()).hexdigest()[:16]
    )
    assert legacy_config_hash(debug_codec.config.to_dict()) == debug_codec.config.hash()
    old_dir = Codec(debug_codec.model)
    old_dir._saved_config = older
    path.write_bytes(_v1_file(codes, legacy_config_hash(older)))
    assert torch.equal(old_dir.decode(read_codes(path)), debug_codec.decode(codes))
    # Rewritten by this library, the file keeps the old identity (and becomes version 2).
    write_codes(tmp_path / "new.cdc", read_codes(path))
    assert read_header(tmp_path / "new.cdc").config_hash == legacy_config_hash(older)


def test_version_1_streams_are_read(codes: Codes) -> None:
    text = _v1_header(codes, "3eec265aa41c1545")
    head = STREAM_MAGIC + struct.pack("<HI", 1, len(text)) + text
    head += struct.pack("<I", zlib.crc32(head))
    h = header_from_codes(codes)
    packet = b"F" + struct.pack("<I", h.num_frames) + encode_frames(codes.codes, h.bits_per_code)
    end = b"E" + struct.pack("<QQ", h.num_samples, h.original_num_samples)
    body = packet + struct.pack("<I", zlib.crc32(packet)) + end + struct.pack("<I", zlib.crc32(end))
    reader = TokenStreamReader(io.BytesIO(head + body), "old")
    assert reader.header.fingerprint == "" and reader.header.config_hash == "3eec265aa41c1545"
    assert torch.equal(torch.cat(list(reader.frames()), -1), codes.codes)


def test_bundled_model_reads_its_version_1_files() -> None:
    """Token files the bundled model wrote before fingerprints existed (golden/speech_16k_v1.cdc)."""
    codec = Codec.from_pretrained("speech_16k")
    old = read_codes(GOLDEN / "speech_16k_v1.cdc")
    if old.config_hash == legacy_config_hash(codec.identity.config):
        same = dataclasses.replace(old, config_hash="", fingerprint=codec.fingerprint)
        assert torch.equal(codec.decode(old), codec.decode(same))
    else:  # the bundled model was since replaced by one with another config
        with pytest.raises(ValueError, match="config hash"):
            codec.decode(old)


# -- Codes values --------------------------------------------------------------------------------


def test_codes_compare_by_value(codes: Codes) -> None:
    copy = dataclasses.replace(codes, codes=codes.codes.clone(), lengths=codes.lengths.clone())
    assert copy == codes
    assert not copy.__ne__(codes)
    assert dataclasses.replace(codes, fingerprint="0" * 64) != codes
    other = codes.codes.clone()
    other[0, 0, 0] = (other[0, 0, 0] + 1) % 64
    assert dataclasses.replace(codes, codes=other) != codes
    assert codes.truncate(2) != codes and codes != "codes"
    with pytest.raises(TypeError):
        hash(codes)
