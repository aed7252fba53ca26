"""Config: presets load, strict keys and types, YAML/dict round trip, stable hash."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from codec.config import CodecConfig, ConfigError, load_preset


def test_presets_describe_the_documented_models() -> None:
    cfg = CodecConfig.from_yaml("speech_16k")
    assert cfg.sample_rate == 16000 and cfg.hop_length == 320 and cfg.frame_rate == 50
    assert cfg.quantizer.total_codebooks == 12 and cfg.quantizer.codebook_size == 1024
    assert cfg.causal
    debug = CodecConfig.from_yaml("debug")
    assert debug.encoder.dim < cfg.encoder.dim


def test_round_trip_through_dict_is_identity() -> None:
    cfg = CodecConfig.from_yaml("speech_16k")
    assert CodecConfig.from_dict(cfg.to_dict()) == cfg


def _write(tmp_path, model: dict) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"model": model}))
    return str(path)


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ({"sample_rat": 16000}, "sample_rat"),
        ({"encoder": {"dimm": 3}}, "encoder.dimm"),
        ({"quantizer": {"kind": "lattice"}}, "quantizer.kind"),
        ({"hop_length": "320"}, "hop_length"),
        ({"causal": 1}, "causal"),
        ({"hop_length": 0}, "hop_length"),
        ({"quantizer": {"dropout": 1.5}}, "dropout"),
        ({"decoder": [1, 2]}, "decoder"),
    ],
)
def test_bad_keys_and_values_are_errors_naming_the_field(tmp_path, model: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        CodecConfig.from_yaml(_write(tmp_path, model))


def test_unknown_top_level_section_is_an_error(tmp_path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("model: {}\ntrainer: {}\n")
    with pytest.raises(ConfigError, match="trainer"):
        load_preset(path)


def test_missing_preset_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no such config"):
        CodecConfig.from_yaml("no_such_preset")


def test_hash_is_stable_and_sensitive() -> None:
    cfg = CodecConfig.from_yaml("debug")
    assert cfg.hash() == CodecConfig.from_yaml("debug").hash()
    assert cfg.hash() != dataclasses.replace(cfg, hop_length=cfg.hop_length * 2).hash()
