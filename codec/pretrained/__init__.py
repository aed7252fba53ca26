"""Models bundled with the package, found by name (a folder here with config.json + model.safetensors)."""

from __future__ import annotations

from pathlib import Path

from codec.errors import InputError

DEFAULT_MODEL = "lyra_rvq_16k_v2"
_HERE = Path(__file__).resolve().parent


class NoBundledModelError(InputError, FileNotFoundError):
    """The requested bundled model is not shipped with this installation."""


def available() -> list[str]:
    """Names of the bundled models that have weights."""
    return sorted(p.parent.name for p in _HERE.glob("*/model.safetensors"))


def model_dir(name: str | None = None) -> Path:
    """The folder of bundled model ``name`` (default: :data:`DEFAULT_MODEL`)."""
    name = name or DEFAULT_MODEL
    # A bundled name is one folder name: never let "/abs/path" or "../x" escape this folder.
    if name in (".", "..") or Path(name).name != name or "\\" in name:
        listing = ", ".join(available()) or "none"
        raise NoBundledModelError(f"no bundled model named {name!r} (bundled: {listing})")
    folder = _HERE / name
    if not (folder / "model.safetensors").is_file():
        have = available()
        if name == DEFAULT_MODEL and not have:
            raise NoBundledModelError(
                f"no bundled model exists yet: this installation ships no weights for the default "
                f"model {DEFAULT_MODEL!r}; pass a model directory (config.json + model.safetensors)"
            )
        listing = ", ".join(have) if have else "none"
        raise NoBundledModelError(f"no bundled model named {name!r} (bundled: {listing})")
    return folder
