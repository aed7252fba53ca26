"""``benchmarks/backends/exactness.py`` runs end to end (shrunk architectures) and writes its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.benchmarks.test_benchmark_scripts import REPO, table_rows
from tests.conftest import speech_like

pytest.importorskip("transformers")


def test_exactness_script(tmp_path: Path) -> None:
    for i, n in enumerate((9000, 5000)):
        sf.write(tmp_path / f"{i}.wav", speech_like(n, seed=i)[0].numpy(), 16000)
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n")
    cmd = [sys.executable, str(REPO / "benchmarks/backends/exactness.py"), "--data", str(tmp_path), "--quick"]
    cmd += ["--kinds", "dac", "mimi", "--batch", "2", "--chunks", "2", "--write-results", str(results)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = results.read_text()
    assert "## Backends: exactness and streaming" in text
    header, rows = table_rows(text, "backend")
    assert header[2] == "codes batched != alone" and [r[0].split()[0] for r in rows] == ["dac", "mimi"]
    assert rows[0][5] == "does not stream" and rows[1][5].startswith("0 of ")  # Mimi streams exactly
