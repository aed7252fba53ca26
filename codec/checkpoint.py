"""Model directories: ``config.json`` (format version + model config) and ``model.safetensors``.

Loading is strict (every tensor present, no extras, shapes checked) and every problem is a
:class:`CheckpointError` naming the directory and what is wrong.  Migrations from older format
versions live in :data:`_MIGRATIONS`, in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from codec.atomic import atomic_write
from codec.config import CodecConfig, ConfigError
from codec.model import CodecModel, build_model

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A model directory is missing, incomplete, corrupt or from an unknown format version."""


# format_version -> function upgrading the config.json dict of that version to the next one.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def save_model(
    model: CodecModel,
    directory: str | Path,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` as an inference model directory.

    Args:
        model: the model to save (its ``cfg`` goes into config.json).
        directory: created if missing; existing files of the same names are replaced atomically.
        metadata: extra JSON-serialisable information stored under ``"metadata"``.
        dtype: storage type of the floating-point tensors (e.g. ``torch.float16`` halves the
            file); loading always upcasts them into the float32 model.
    Returns: the directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        overflow = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if overflow:
            raise ValueError(f"tensor {overflow[0]} does not fit in {dtype} (overflow to Inf)")
    atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    doc = {"format_version": FORMAT_VERSION, "config": model.cfg.to_dict(), "metadata": metadata or {}}
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(text))
    return directory


def read_config(directory: str | Path) -> tuple[CodecConfig, dict[str, Any]]:
    """The model config and metadata of a model directory, validated and migrated."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a model directory (no {CONFIG_NAME})")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(doc, dict) or "format_version" not in doc or "config" not in doc:
        raise CheckpointError(f"{path}: missing 'format_version' or 'config'")
    version = doc["format_version"]
    if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version!r} is not supported (this library reads 1..{FORMAT_VERSION})"
        )
    while version < FORMAT_VERSION:
        doc = _MIGRATIONS[version](doc)
        version += 1
    try:
        cfg = CodecConfig.from_dict(doc["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path}: invalid model config: {err}") from None
    return cfg, doc.get("metadata", {})


def load_model(directory: str | Path, device: str | torch.device | None = None) -> CodecModel:
    """Build the model of a directory and load its weights strictly; returns it in eval mode."""
    directory = Path(directory)
    cfg, _ = read_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{directory}: no weights ({WEIGHTS_NAME} is missing)")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights}: unreadable or corrupt weights ({err})") from None
    model = build_model(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{weights}: weights do not match config.json ({what})")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{weights}: tensor {name} has shape {tuple(tensor.shape)}, "
                f"config.json implies {tuple(expected[name].shape)}"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{weights}: tensor {name} contains NaN or Inf")
    model.load_state_dict(state, strict=True)
    return model.to(device or "cpu").eval()
