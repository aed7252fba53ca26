"""Packaging: exports, kernels and presets installed, licences beside what they cover (the import
layout and a light ``import codec``: ``tests/test_layout.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import codec


def test_public_exports() -> None:
    assert set(codec.__all__) == {"Codec", "CodecConfig", "Codes", "load_audio", "save_audio", "__version__"}
    assert isinstance(codec.__version__, str)
    assert (Path(codec.__file__).parent / "py.typed").is_file()


def test_kernels_and_presets_ship_inside_the_package() -> None:
    from codec.config import resolve_preset
    from codec.kernels.rvq import rvq_encode

    assert callable(rvq_encode)
    assert resolve_preset("speech_16k").is_file() and resolve_preset("debug").is_file()


def test_licences_ship_beside_what_they_cover() -> None:
    """MIT for the package (LICENSE, pyproject, README agree); Lyra's Apache-2.0 files beside its models."""
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    repo = Path(__file__).resolve().parent.parent
    text = (repo / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c)" in text and "The codec authors" in text
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    assert project["project"]["license"] == {"text": "MIT"}
    readme = (repo / "README.md").read_text()
    assert "## Licence" in readme and "MIT (`LICENSE`" in readme
    lyra = Path(codec.__file__).parent / "bench" / "lyra_v2"
    assert (lyra / "LICENSE").read_text().lstrip().startswith("Apache License")
    notice = (lyra / "NOTICE").read_text()
    for model in sorted(lyra.glob("*.tflite")):
        assert model.name in notice, model.name  # every model file is named in the NOTICE
    assert "codec/bench/lyra_v2/" in readme and "Apache-2.0" in readme
    assert "bench/lyra_v2/*" in project["tool"]["setuptools"]["package-data"]["codec"]  # both files ship


REPO = Path(__file__).resolve().parent.parent


def _from_repo_root(code: str) -> subprocess.CompletedProcess:
    """``python -c code`` started in the repository root (the root first on ``sys.path``)."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_kernels_folder_never_shadows_the_installed_kernels_package() -> None:
    import importlib.metadata

    import pytest

    try:
        dist = importlib.metadata.distribution("kernels")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("PyPI's kernels package is not installed")
    done = _from_repo_root("import kernels; print(kernels.__file__)")
    assert done.returncode == 0, done.stderr
    where = Path(done.stdout.strip()).resolve()
    assert REPO not in where.parents and where == Path(dist.locate_file("kernels/__init__.py")).resolve()
    if importlib.util.find_spec("transformers") is not None:
        done = _from_repo_root("from transformers import DacModel, MimiModel")  # imports PyPI's kernels
        assert done.returncode == 0, done.stderr[-2000:]


def test_the_kernels_folder_keeps_its_bare_name_when_nothing_else_has_it() -> None:
    # A finder that hides every `kernels` but the repository's folder, as on a machine without
    # PyPI's package: the folder then imports as itself and works.
    code = (
        "import sys; from pathlib import Path\n"
        f"root = Path({str(REPO)!r})\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'kernels' and root not in [Path(p or '.').resolve() for p in sys.path]:\n"
        "            raise ModuleNotFoundError(\"No module named 'kernels'\", name='kernels')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import kernels; print(kernels.__file__, kernels.backend_for.__module__)"
    )
    done = _from_repo_root(code)
    assert done.returncode == 0, done.stderr
    path, module = done.stdout.split()
    assert Path(path).resolve() == REPO / "kernels" / "__init__.py" and module == "codec.kernels.dispatch"
