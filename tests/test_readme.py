"""Facts the README states about the package, checked against the package itself."""

from __future__ import annotations

import re
from pathlib import Path

from codec.pretrained import model_dir

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _bundled_fingerprint() -> str:
    import json

    return json.loads((model_dir("speech_16k") / "config.json").read_text())["fingerprint"]


def test_fingerprints_shown_for_the_bundled_model_are_its_own() -> None:
    real = _bundled_fingerprint()
    shown = re.findall(r"'speech_16k' \(weights ([0-9a-f]+)\)", README)
    shown += re.findall(r'"fingerprint":"([0-9a-f]+)…"', README)  # the token file header example
    assert len(shown) >= 2
    for prefix in shown:
        assert real.startswith(prefix), (prefix, real[:12])


def test_examples_pass_data_paths_that_exist_outside_this_repository() -> None:
    """The presets name ../shared/data (this repository's development copy); examples must not."""
    inside, code = False, []
    for line in README.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            code.append(line)
    assert len(code) > 100
    assert not [line for line in code if "../shared/data" in line]


def test_every_test_the_fault_table_names_exists() -> None:
    table = README.split("## Fault table", 1)[1].split("\n## ", 1)[0]
    tests = Path(__file__).resolve().parent
    named = 0
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| input") and rows[1].startswith("| ---")
    for row in rows[2:]:
        where = re.findall(r"`([\w/]+\.py)::(\w+)`|`::(\w+)`", row.rsplit("|", 2)[1])
        path = None
        for file, name, more in where:
            path = tests / file if file else path
            assert path is not None and f"def {name or more}(" in path.read_text(), (file, name or more)
            named += 1
    assert named >= 14
