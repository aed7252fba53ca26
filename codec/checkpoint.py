"""Model directories: ``config.json`` (format version, model config, weights fingerprint,
architecture digest) and ``model.safetensors``.

Loading is strict (every tensor present, no extras, shapes checked) and every problem is a
:class:`CheckpointError` naming the directory and what is wrong.  Migrations from older format
versions live in :data:`_MIGRATIONS`, in one place.

A model's identity is the fingerprint of its weights (:func:`weights_fingerprint`), not its
config or name: two models trained from one preset share a config but never their weights.
``save_model`` records the fingerprint in ``config.json``; ``load_model`` recomputes it from the
weights it loaded and refuses a directory whose weights no longer match it.  Token files carry
the fingerprint and decoding checks it (:class:`ModelIdentity`).

The same weights under another architecture (``causal: false``, another sample rate) are
another function, so ``save_model`` also records the digest of the config they were saved with
(:func:`architecture_digest`), and loading refuses a ``config.json`` whose config no longer
matches it: the weights fingerprint then identifies one function, and token files written
before the digest existed keep their identity.  Directories saved before format version 3
record no digest; their config is taken as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from codec.atomic import atomic_write
from codec.config import CodecConfig, ConfigError
from codec.errors import InputError
from codec.model import CodecModel, build_model

FORMAT_VERSION = 3
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(InputError):
    """A model directory is missing, incomplete, corrupt or from an unknown format version."""


# format_version -> function upgrading the config.json dict of that version to the next one.
# Version 1 recorded no fingerprint: it is computed from the weights at load instead.  Version 2
# recorded no architecture digest: its config cannot be checked, and is taken as it is.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: lambda doc: {**doc, "fingerprint": None},
    2: lambda doc: {**doc, "architecture": None},
}


def weights_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """The identity of a set of weights: sha256 (64 hex digits) of every tensor's name, dtype,
    shape and bytes, in name order.  Model directories record it for the weights as the loaded
    model holds them (float16 storage upcast to float32).

    It depends only on the tensors, not on how the safetensors file lays them out or on its
    metadata, so re-saving the same weights keeps the identity and any changed value changes it.

    Args:
        state: a state dict (tensors on any device).
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode() + b"\n")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def legacy_config_hash(config: Mapping[str, Any]) -> str:
    """The config hash that version-1 token files recorded as the model's identity.

    It is the hash of the config as that file's writer saw it, so fields added to
    :class:`CodecConfig` since then (absent from ``config``) are left out: adding a field with a
    default never orphans an old token file.

    Args:
        config: a model config as a plain dict (e.g. the ``config`` of a ``config.json``).
    """
    full = CodecConfig.from_dict(dict(config)).to_dict()
    blob = json.dumps(_prune(full, config), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def architecture_digest(config: Mapping[str, Any]) -> str:
    """The sha256 of everything in a model config but its name: what, beside the weights,
    decides what the model computes.

    Like :func:`legacy_config_hash` it covers the keys ``config`` has (with their values as
    :class:`CodecConfig` reads them), so a field added to the library since, absent from an
    older ``config.json`` and at its default, does not change it; any value changed, added or
    removed by hand does.

    Args:
        config: a model config as a plain dict (the ``config`` of a ``config.json``).
    """
    full = CodecConfig.from_dict(dict(config)).to_dict()
    kept = {k: v for k, v in _prune(full, config).items() if k != "name"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def _prune(full: dict[str, Any], keep: Mapping[str, Any]) -> dict[str, Any]:
    """``full`` restricted to the keys of ``keep``, recursively."""
    return {
        k: _prune(v, keep[k]) if isinstance(v, dict) and isinstance(keep[k], Mapping) else v
        for k, v in full.items()
        if k in keep
    }


@dataclass(frozen=True)
class ModelIdentity:
    """Who a decoder is, for checking codes against it.

    Attributes:
        name: the model's name (informational: renaming a model does not change who it is).
        fingerprint: :func:`weights_fingerprint` of its weights.
        config: its config as a plain dict, as far as version-1 token files knew it (their
            identity was a hash of it, see :func:`legacy_config_hash`).
    """

    name: str
    fingerprint: str
    config: Mapping[str, Any]

    def mismatch(self, model: str, fingerprint: str, config_hash: str = "") -> str | None:
        """Why codes recorded as made by ``model`` cannot be decoded by this model, or None.

        Args:
            model: the name the codes record.
            fingerprint: the weights fingerprint they record ("" if none).
            config_hash: the config hash a version-1 token file recorded ("" if none).
        """
        if fingerprint:
            if fingerprint == self.fingerprint:
                return None
            return (
                f"made by model {model!r} (weights {fingerprint[:12]}), not by the loaded model "
                f"{self.name!r} (weights {self.fingerprint[:12]})"
            )
        if not config_hash:
            return None  # codes that record no identity (built by hand) cannot be checked
        # The old hash covered the name too: a model renamed since then is recognised by
        # hashing its config under the name the codes record.
        hashes = {legacy_config_hash(self.config), legacy_config_hash({**self.config, "name": model})}
        if config_hash in hashes:
            return None
        return (
            f"made by model {model!r} (config hash {config_hash}, an old token file without a weights "
            f"fingerprint), not by the loaded model {self.name!r} "
            f"(config hash {legacy_config_hash(self.config)})"
        )


@dataclass(frozen=True)
class Checkpoint:
    """A loaded model directory.

    Attributes:
        model: the model, in eval mode.
        fingerprint: its weights fingerprint (verified against config.json when recorded there).
        config: the model config as written in config.json (for old token files' identity).
        metadata: the ``metadata`` of config.json.
    """

    model: CodecModel
    fingerprint: str
    config: dict[str, Any]
    metadata: dict[str, Any]


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
    held = {k: v.dtype for k, v in state.items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        overflow = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if overflow:
            raise ValueError(f"tensor {overflow[0]} does not fit in {dtype} (overflow to Inf)")
    atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    doc = {
        "format_version": FORMAT_VERSION,
        "config": model.cfg.to_dict(),
        "architecture": architecture_digest(model.cfg.to_dict()),
        # The weights as loading gives them back (upcast to the model's dtypes): the identity
        # does not depend on the storage type.
        "fingerprint": weights_fingerprint({k: v.to(held[k]) for k, v in state.items()}),
        "metadata": metadata or {},
    }
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(text))
    return directory


def read_config(directory: str | Path) -> tuple[CodecConfig, dict[str, Any]]:
    """The model config and metadata of a model directory, validated and migrated."""
    doc = _read_doc(Path(directory))
    return _config(doc, Path(directory) / CONFIG_NAME), doc.get("metadata", {})


def _check_architecture(doc: dict[str, Any], path: Path) -> None:
    """Refuse a config that is not the one the weights were saved with (see the module docstring)."""
    recorded = doc["architecture"]
    if recorded is not None and recorded != architecture_digest(doc["config"]):
        raise CheckpointError(
            f"{path}: the model config was changed after the weights were saved (its architecture "
            "digest does not match): these weights would compute another function and decode "
            "other tokens; restore the config the model was saved with, or export it again"
        )


def _read_doc(directory: Path) -> dict[str, Any]:
    """config.json of ``directory``, migrated to :data:`FORMAT_VERSION`."""
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
    for key, what in (("fingerprint", "the weights' sha256"), ("architecture", "the config's sha256")):
        if key not in doc:
            raise CheckpointError(f"{path}: missing {key!r} ({what})")
        recorded = doc[key]
        if recorded is not None and not is_fingerprint(recorded):
            raise CheckpointError(f"{path}: {key!r} must be 64 lowercase hex digits, got {recorded!r}")
    return doc


def is_fingerprint(value: object) -> bool:
    """Whether ``value`` is a weights fingerprint: 64 lowercase hex digits."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _config(doc: dict[str, Any], path: Path) -> CodecConfig:
    if not isinstance(doc["config"], dict):
        raise CheckpointError(f"{path}: invalid model config: 'config' is not a mapping")
    try:
        cfg = CodecConfig.from_dict(doc["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path}: invalid model config: {err}") from None
    _check_architecture(doc, path)
    return cfg


def load_model(directory: str | Path, device: str | torch.device | None = None) -> CodecModel:
    """Build the model of a directory and load its weights strictly; returns it in eval mode."""
    return load_checkpoint(directory, device).model


def load_checkpoint(directory: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """Load a model directory strictly and verify its weights against their recorded fingerprint.

    Args:
        directory: a model directory (config.json + model.safetensors).
        device: where the model goes (default: CPU).
    Returns: :class:`Checkpoint` (model in eval mode, fingerprint, raw config, metadata).
    """
    directory = Path(directory)
    doc = _read_doc(directory)
    cfg = _config(doc, directory / CONFIG_NAME)
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
    fingerprint = weights_fingerprint(model.state_dict())  # as held: float16 storage is upcast
    if doc["fingerprint"] is not None and doc["fingerprint"] != fingerprint:
        raise CheckpointError(
            f"{weights}: the weights are not the ones config.json records (fingerprint "
            f"{fingerprint[:12]}, recorded {doc['fingerprint'][:12]}): the file was changed or is corrupt"
        )
    return Checkpoint(model.to(device or "cpu").eval(), fingerprint, doc["config"], doc.get("metadata", {}))


def model_fingerprint(directory: str | Path) -> str:
    """The weights fingerprint of a model directory: the recorded one, else computed from the weights."""
    doc = _read_doc(Path(directory))
    if doc["fingerprint"] is not None:
        return doc["fingerprint"]
    return load_checkpoint(directory).fingerprint
