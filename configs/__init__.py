"""YAML presets shipped with the package (installed as ``codec.configs``)."""

from __future__ import annotations

from pathlib import Path


def bundled_presets() -> list[str]:
    """The names of the presets in this folder, sorted (cheap: no YAML is read)."""
    return sorted(p.stem for p in Path(__file__).resolve().parent.glob("*.yaml"))
