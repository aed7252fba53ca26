"""Packaging: exports, no heavy or training imports in the inference core, kernels installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import codec


def test_public_exports() -> None:
    assert set(codec.__all__) == {"Codec", "CodecConfig", "Codes", "load_audio", "save_audio", "__version__"}
    assert isinstance(codec.__version__, str)
    assert (Path(codec.__file__).parent / "py.typed").is_file()


def test_inference_core_imports_no_training_dependency() -> None:
    code = (
        "import sys, codec, codec.api, codec.streaming, codec.checkpoint, codec.kernels.rvq; "
        "bad = [m for m in ('lightning', 'pytorch_lightning', 'auraloss', 'pesq', 'pystoi', 'codec.train') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_kernels_and_presets_ship_inside_the_package() -> None:
    from codec.config import resolve_preset
    from codec.kernels.rvq import rvq_encode

    assert callable(rvq_encode)
    assert resolve_preset("speech_16k").is_file() and resolve_preset("debug").is_file()
