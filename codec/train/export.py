"""Training checkpoint -> inference model directory (config.json + model.safetensors).

The checkpoint carries the model config in its hyper-parameters, so no preset is needed.
It is read with ``torch.load(weights_only=True)``: plain tensors and containers, no pickled
code is executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from codec.atomic import staged_dir
from codec.checkpoint import save_model
from codec.config import CodecConfig, ConfigError, from_dict
from codec.errors import InputError
from codec.model import build_model


class ExportError(InputError):
    """The file is not a training checkpoint of this library (or not of the model in question),
    or the model directory to write exists already."""


@dataclass(frozen=True)
class ExportResult:
    """Where the model went and what it was made from."""

    directory: Path
    step: int
    used_ema: bool


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ExportError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many different types for foreign files
        raise ExportError(f"{path}: not a readable training checkpoint ({type(err).__name__})") from None
    if (
        not isinstance(ckpt, dict)
        or "state_dict" not in ckpt
        or "model" not in ckpt.get("hyper_parameters", {})
    ):
        raise ExportError(f"{path}: not a codec training checkpoint (no model config inside)")
    return ckpt


def export_checkpoint(
    checkpoint: str | Path,
    directory: str | Path,
    use_ema: bool = True,
    dtype: torch.dtype | None = None,
    replace: bool = False,
) -> ExportResult:
    """Write the generator of ``checkpoint`` as a model directory.

    The directory appears whole or not at all (:func:`codec.atomic.staged_dir`): token files
    made with a model that is being replaced keep decoding with it until the new one is in
    place, and a failed or killed export leaves the old one as it was.

    Args:
        checkpoint: a ``.ckpt`` file written by ``codec train``.
        directory: the model directory to create.
        use_ema: take the EMA weights when the run kept them.
        dtype: storage type of the weights (``torch.float16``: half the size, upcast at load).
        replace: replace an existing ``directory`` (``--force``); otherwise it is refused.
    Returns: an :class:`ExportResult`.
    Raises:
        ExportError: not a readable codec training checkpoint, or ``directory`` exists.
    """
    path, target = Path(checkpoint), Path(directory)
    if not replace and (target.exists() or target.is_symlink()):
        raise ExportError(f"{target}: already exists (use --force to replace it)")
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target}: is a file, not a model directory")
    ckpt = _load(path)
    cfg = from_dict(CodecConfig, ckpt["hyper_parameters"]["model"], "model")
    state = ckpt["state_dict"]
    has_ema = any(k.startswith("ema.") for k in state)
    prefix = "ema." if use_ema and has_ema else "generator."
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    model = build_model(cfg)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ExportError(f"{path}: weights do not match the model config (missing {missing[:3]})")
    step = int(ckpt.get("global_step", 0))
    metadata = {"training_step": step, "weights": "ema" if prefix == "ema." else "raw", "source": path.name}
    with staged_dir(target, replace=replace) as staging:
        save_model(model.eval(), staging, metadata=metadata, dtype=dtype)
    return ExportResult(target, step, prefix == "ema.")


def check_resume(checkpoint: str | Path, module: torch.nn.Module, model: CodecConfig) -> None:
    """Refuse to resume from ``checkpoint`` unless it is a training checkpoint of this model.

    Read as :func:`export_checkpoint` reads it (``weights_only``: nothing pickled runs), before
    Lightning loads it, so that a truncated or foreign file and a checkpoint of another
    architecture are one clear error rather than a loader's traceback.

    Args:
        checkpoint: the ``--resume`` file.
        module: the run's training module (its tensors' names and shapes).
        model: the run's model config.
    Raises:
        ExportError: unreadable, not a codec training checkpoint, or another model's.
    """
    path = Path(checkpoint)
    ckpt = _load(path)
    try:
        saved = from_dict(CodecConfig, ckpt["hyper_parameters"]["model"], "model").to_dict()
    except (ConfigError, TypeError) as err:
        raise ExportError(f"{path}: its model config is not one this library reads ({err})") from None
    diff = _difference(saved, model.to_dict())
    if diff:
        raise ExportError(
            f"{path}: a checkpoint of another model ({diff}); resume with the config it was trained with"
        )
    state, want = ckpt["state_dict"], module.state_dict()
    unexpected = sorted(set(state) - set(want))
    bad = [k for k in sorted(set(state) & set(want)) if tuple(state[k].shape) != tuple(want[k].shape)]
    if unexpected or bad:
        what = f"tensor {bad[0]} has another shape" if bad else f"it holds {unexpected[0]}, this run does not"
        raise ExportError(f"{path}: its weights do not fit this run ({what})")


def _difference(saved: dict[str, Any], current: dict[str, Any], where: str = "model") -> str:
    """The first architecture setting that differs, as ``key: saved, now current``; "" if none."""
    for key in sorted(set(saved) | set(current)):
        if key == "name" and where == "model":
            continue  # renaming a run changes no tensor
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _difference(a, b, f"{where}.{key}")
            if inner:
                return inner
        elif a != b:
            return f"{where}.{key} is {a!r} in it, {b!r} in this run's config"
    return ""
