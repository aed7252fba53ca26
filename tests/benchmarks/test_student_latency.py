"""``benchmarks/streaming/student.py`` runs end to end and writes both models' rows (no time is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_student_script_writes_teacher_and_student_rows(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## RVQ kernels\n\nkept as it is\n")
    cmd = [sys.executable, str(REPO / "benchmarks/streaming/student.py"), "--quick", "--teacher", "debug"]
    cmd += ["--student", "debug", "--write-results", str(results)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = results.read_text()
    assert "## RVQ kernels\n\nkept as it is" in text and "## Distilled student latency" in text
    rows = [line for line in text.splitlines() if line.startswith(("| teacher (debug)", "| student (debug)"))]
    assert len(rows) == 2 and all(row.split("|")[-2].strip() in ("pass", "FAIL") for row in rows)
    assert "| stage (one frame, batch 1), ms median | teacher (debug) | student (debug) |" in text
