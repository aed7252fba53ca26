"""Fixtures of the tokenize tests: a tiny corpus and a saved debug model."""

from __future__ import annotations

from pathlib import Path

import pytest

from codec import Codec
from codec.checkpoint import save_model
from tests.data.kit import make_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, debug_codec: Codec) -> Path:
    return save_model(debug_codec.model, tmp_path_factory.mktemp("model") / "debug")


@pytest.fixture(scope="session")
def model(model_dir: Path) -> Codec:
    return Codec.from_pretrained(model_dir)
