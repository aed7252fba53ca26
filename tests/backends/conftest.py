"""Fixtures of the backend tests: each tiny peer model saved once, and loaded through the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends.tiny import save_tiny


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """kind -> a folder holding that kind's tiny model (made on first use)."""

    class Folders(dict):
        def __missing__(self, kind: str) -> Path:
            self[kind] = save_tiny(kind, tmp_path_factory.mktemp("peers") / kind)
            return self[kind]

    return Folders()


@pytest.fixture(scope="session")
def loaded(tiny_dirs):
    """kind -> the backend ``Codec.from_pretrained("KIND:FOLDER")`` gives (loaded once)."""
    from codec import Codec

    class Backends(dict):
        def __missing__(self, kind: str):
            self[kind] = Codec.from_pretrained(f"{kind}:{tiny_dirs[kind]}")
            return self[kind]

    return Backends()
