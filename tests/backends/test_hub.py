"""Weights that cannot be had are one line naming the model and how to get them (no retries, no
traceback); a hub id already in the local Hugging Face cache loads without asking the hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.faults.kit import cli_command

pytest.importorskip("transformers")
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once


def run_cli(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    home = {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_CACHE": str(tmp_path / "hf-home" / "hub")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return subprocess.run(
        [*cli_command(), *argv], capture_output=True, text=True, timeout=300, env={**clean, **home, **env}
    )


def test_offline_mode_says_how_to_get_the_weights(tmp_path) -> None:
    done = run_cli(["info", "--model", "dac:someone/dac_16khz"], tmp_path, HF_HUB_OFFLINE="1")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (
        "dac:someone/dac_16khz: the weights are not in the Hugging Face cache and HF_HUB_OFFLINE is set"
        in done.stderr
    )
    assert "hf download someone/dac_16khz --local-dir dac_16khz" in done.stderr
    assert "--model dac:./dac_16khz" in done.stderr


def test_an_unreachable_hub_is_asked_once(tmp_path) -> None:
    done = run_cli(["info", "--model", "mimi:someone/mimi"], tmp_path, HF_ENDPOINT=CLOSED)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{CLOSED} cannot be reached" in done.stderr and "hf download someone/mimi" in done.stderr
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr


def test_a_cached_hub_id_loads_without_the_hub(tiny_dirs, loaded, tmp_path) -> None:
    # The Hugging Face cache's layout for one snapshot of someone/tiny-dac.
    repo = tmp_path / "hf-home" / "hub" / "models--someone--tiny-dac"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_dirs["dac"], repo / "snapshots" / commit)
    done = run_cli(["info", "--model", "dac:someone/tiny-dac", "--json"], tmp_path, HF_ENDPOINT=CLOSED)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["fingerprint"] == loaded["dac"].fingerprint and info["name"] == "dac:someone--tiny-dac"


def test_a_missing_package_is_named(monkeypatch, tmp_path) -> None:
    import sys

    from codec import Codec
    from codec.backends import BackendError

    monkeypatch.setitem(sys.modules, "snac", None)  # as if it were not installed
    with pytest.raises(BackendError, match="snac models need the snac package: pip install snac"):
        Codec.from_pretrained("snac:someone/snac")
    # speechtokenizer 1.0.1 imports beartype without declaring it: a stand-in package that does the
    # same (whether or not the real one is installed) must be reported with its missing import
    for name in [m for m in sys.modules if m.split(".")[0] in ("speechtokenizer", "beartype")]:
        monkeypatch.delitem(sys.modules, name)
    (tmp_path / "speechtokenizer").mkdir()
    (tmp_path / "speechtokenizer" / "__init__.py").write_text("import beartype\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "beartype", None)
    with pytest.raises(
        BackendError, match=r"package \(import of beartype .*pip install speechtokenizer beartype"
    ):
        Codec.from_pretrained("speechtokenizer:someone/st")
