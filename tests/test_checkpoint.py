"""Model directories: round trip and every way one can be broken."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

from codec.checkpoint import CheckpointError, load_model, read_config, save_model


@pytest.fixture
def model_dir(tmp_path, debug_codec):
    return save_model(debug_codec.model, tmp_path / "model", {"note": "test"})


def test_round_trip(model_dir, debug_codec) -> None:
    model = load_model(model_dir)
    for (name, a), b in zip(debug_codec.model.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert read_config(model_dir)[1] == {"note": "test"}
    assert not list(model_dir.glob(".*"))
    # Files are as readable as any other new file (not left at the temp files' 0600).
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((model_dir / name).stat().st_mode) == 0o666 & ~mask


def _edit_config(model_dir, fn) -> None:
    path = model_dir / "config.json"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _legacy(doc: dict) -> None:
    """A version-2 config.json (saved before the architecture digest, so its config is not checked)."""
    doc.update(format_version=2)
    del doc["architecture"]


@pytest.mark.parametrize(
    ("breakage", "fragment"),
    [
        (lambda d: (d / "model.safetensors").unlink(), "no weights"),
        (lambda d: (d / "config.json").unlink(), "not a model directory"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "model.safetensors").write_bytes(b"garbage" * 10), "corrupt"),
        (lambda d: _edit_config(d, lambda c: c.update(format_version=99)), "format_version 99"),
        (lambda d: _edit_config(d, lambda c: c["config"].update(hop_lenght=3)), "hop_lenght"),
        (lambda d: _edit_config(d, lambda c: c["config"]["encoder"].update(dim=48)), "changed after"),
        (lambda d: _edit_config(d, lambda c: (c["config"]["encoder"].update(dim=48), _legacy(c))), "shape"),
    ],
)
def test_broken_model_directories_give_clear_errors(model_dir, breakage, fragment: str) -> None:
    breakage(model_dir)
    with pytest.raises(CheckpointError, match=fragment):
        load_model(model_dir)


def test_missing_or_extra_or_nonfinite_tensors_are_refused(model_dir) -> None:
    path = model_dir / "model.safetensors"
    state = load_file(str(path))
    name = next(iter(state))
    save_file({k: v for k, v in state.items() if k != name}, str(path))
    with pytest.raises(CheckpointError, match="missing"):
        load_model(model_dir)
    save_file(state | {"extra.weight": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_model(model_dir)
    bad = dict(state)
    bad["encoder.proj.weight"] = torch.full_like(state["encoder.proj.weight"], float("nan"))
    save_file(bad, str(path))
    with pytest.raises(CheckpointError, match="NaN"):
        load_model(model_dir)


def test_missing_directory(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such model directory"):
        load_model(tmp_path / "nothing")
