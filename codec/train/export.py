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

from codec.checkpoint import save_model
from codec.config import CodecConfig, from_dict
from codec.errors import InputError
from codec.model import build_model


class ExportError(InputError):
    """The file is not a training checkpoint of this library."""


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
    checkpoint: str | Path, directory: str | Path, use_ema: bool = True, dtype: torch.dtype | None = None
) -> ExportResult:
    """Write the generator of ``checkpoint`` as a model directory.

    Args:
        checkpoint: a ``.ckpt`` file written by ``codec train``.
        directory: the model directory to create (or overwrite).
        use_ema: take the EMA weights when the run kept them.
        dtype: storage type of the weights (``torch.float16``: half the size, upcast at load).
    Returns: an :class:`ExportResult`.
    Raises:
        ExportError: not a readable codec training checkpoint.
    """
    path = Path(checkpoint)
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
    out = save_model(model.eval(), directory, metadata=metadata, dtype=dtype)
    return ExportResult(Path(out), step, prefix == "ema.")
