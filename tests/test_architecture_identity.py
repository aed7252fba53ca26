"""A model is its weights and its architecture: a model directory whose config was changed
after its weights were saved is refused, while renames, fields added to the library since and
old directories keep loading, and the bundled model's old token files keep decoding."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from codec import Codec
from codec.checkpoint import CheckpointError, architecture_digest, load_checkpoint, save_model
from codec.pretrained import available, model_dir
from codec.tokenfile import read_codes
from tests.faults.kit import cli_command
from tests.golden import make_golden

bundled = pytest.mark.skipif("speech_16k" not in available(), reason="no bundled weights")


def _edit(folder: Path, change) -> None:
    path = folder / "config.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))


@pytest.fixture
def copy_of_bundled(tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir("speech_16k"), tmp_path / "copy"))


@bundled
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("causal", False),
        ("sample_rate", 24000),
        ("quantizer.kind", "euclidean"),
        ("decoder.head_window", 960),
    ],
)
def test_a_copy_of_the_bundled_model_with_another_architecture_is_refused(
    copy_of_bundled, key, value
) -> None:
    def change(doc: dict) -> None:
        *section, name = key.split(".")
        target = doc["config"]
        for part in section:
            target = target[part]
        target[name] = value

    _edit(copy_of_bundled, change)
    with pytest.raises(CheckpointError, match="changed after the weights were saved"):
        Codec.from_pretrained(copy_of_bundled)
    wav = model_dir("speech_16k") / "example.flac"
    out = copy_of_bundled.parent / "x.cdc"
    run = subprocess.run(
        [*cli_command(), "encode", str(wav), "-o", str(out), "--model", str(copy_of_bundled)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "changed after the weights were saved" in run.stderr and not out.exists()


@bundled
def test_renames_and_fields_added_to_the_library_since_change_nothing(copy_of_bundled) -> None:
    doc = json.loads((copy_of_bundled / "config.json").read_text())
    # Fields the library gained after this config.json was written: absent, so at their defaults.
    assert "head_window" not in doc["config"]["decoder"] and "downsample" not in doc["config"]["encoder"]
    _edit(copy_of_bundled, lambda doc: doc["config"].update(name="my_copy"))
    codec = Codec.from_pretrained(copy_of_bundled)
    original = Codec.from_pretrained("speech_16k")
    assert codec.fingerprint == original.fingerprint and codec.name == "my_copy"
    # Token files the bundled model wrote before the digest existed decode with it, and with the copy.
    old = read_codes(make_golden.codes_file("speech_16k"))
    assert old.fingerprint == original.fingerprint
    assert original.decode(old).shape == codec.decode(old).shape


@bundled
@pytest.mark.parametrize("name", available())
def test_every_bundled_config_records_its_digest(name: str) -> None:
    doc = json.loads((model_dir(name) / "config.json").read_text())
    assert doc["format_version"] == 3 and doc["architecture"] == architecture_digest(doc["config"])


def test_removing_the_digest_or_editing_a_saved_config_is_refused(tmp_path: Path, debug_codec: Codec) -> None:
    folder = save_model(debug_codec.model, tmp_path / "m")
    _edit(folder, lambda doc: doc["config"].update(hop_length=doc["config"]["hop_length"]))
    assert load_checkpoint(folder).fingerprint == debug_codec.fingerprint  # unchanged: loads
    _edit(folder, lambda doc: doc["config"].update(causal=False))
    with pytest.raises(CheckpointError, match="changed after the weights were saved"):
        load_checkpoint(folder)
    _edit(folder, lambda doc: (doc["config"].update(causal=True), doc.pop("architecture")))
    with pytest.raises(CheckpointError, match="missing 'architecture'"):
        load_checkpoint(folder)


def test_directories_saved_before_the_digest_still_load(tmp_path: Path, debug_codec: Codec) -> None:
    folder = save_model(debug_codec.model, tmp_path / "m")
    _edit(folder, lambda doc: (doc.update(format_version=2), doc.pop("architecture")))
    assert load_checkpoint(folder).fingerprint == debug_codec.fingerprint
