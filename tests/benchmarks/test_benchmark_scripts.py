"""The benchmark scripts run end to end on the debug model and write well-formed tables.

Each script runs in a child process with ``--quick`` (a few iterations), as a user would run
it.  Nothing here checks a time: the machine running the tests may be slow or busy.  The peer
codecs are optional; without their packages the streaming table says they were skipped.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from codec import Codec
from codec.bench import harness

REPO = Path(__file__).resolve().parents[2]
OTHER_SECTION = "## RVQ kernels\n\nkept as it is\n"


def run_script(script: str, *args: str, results: Path) -> str:
    """Run ``benchmarks/<script>`` quickly on the debug model, writing into ``results``."""
    cmd = [sys.executable, str(REPO / "benchmarks" / script), "--quick", "--config", "debug"]
    cmd += [*args, "--write-results", str(results)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return results.read_text()


def table_rows(text: str, first_header_cell: str) -> tuple[list[str], list[list[str]]]:
    """Header and body rows of the first Markdown table whose header starts with the given cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header_cell} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    body = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        body.append([c.strip() for c in line.strip("|").split("|")])
    return header, body


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n" + OTHER_SECTION)
    return path


def test_rtf_script(results: Path) -> None:
    text = run_script("speed/rtf.py", "--threads", "1", results=results)
    assert OTHER_SECTION in text and "## Offline speed (CPU)" in text
    header, rows = table_rows(text, "threads")
    assert header[:4] == ["threads", "input", "batch", "encode ms (median)"]
    assert "decode RTF" in header
    assert [(r[0], r[2]) for r in rows] == [("1", "1"), ("1", "2")]
    _, params = table_rows(text, "stage")
    assert [r[0] for r in params] == ["encoder", "quantizer", "decoder", "total"]
    counts = [int(r[1].replace(",", "")) for r in params]
    assert sum(counts[:3]) == counts[3]


def test_latency_script(results: Path) -> None:
    text = run_script("streaming/latency.py", "--threads", "1", "--no-gpu", results=results)
    assert OTHER_SECTION in text and "## Streaming latency" in text
    header, rows = table_rows(text, "model")
    assert header[1:4] == ["threads", "frame ms", "encode ms median"]
    assert "algorithmic latency ms" in header
    models = [r[0] for r in rows]
    assert models[0].startswith("ours (debug)")
    assert any(m.startswith("Mimi") for m in models) and any(m.startswith("EnCodec") for m in models)
    for peer in ("moshi", "encodec"):
        if importlib.util.find_spec(peer) is None:
            assert f"skipped: the `{peer}` package is not installed" in text
    _, targets = table_rows(text, "target (one CPU thread, batch 1)")
    assert len(targets) == 5 and all(r[-1] in ("pass", "FAIL") for r in targets)
    assert "GPU: not measured" in text
    _, stages = table_rows(text, "stage (one frame, batch 1)")
    assert {"encoder trunk", "RVQ search (all levels)", "decoder trunk", "iSTFT head"} <= {
        r[0] for r in stages
    }


@pytest.mark.skipif(
    importlib.util.find_spec("codec.cli") is None or importlib.util.find_spec("codec.pipeline") is None,
    reason="the `codec encode/decode` command line (codec/cli.py, codec/pipeline) is not there yet",
)
def test_memory_script(results: Path) -> None:
    text = run_script("streaming/memory.py", results=results)
    assert OTHER_SECTION in text and "## Long-file memory" in text
    header, rows = table_rows(text, "input")
    assert header[2] == "encode peak RSS MiB" and "decode peak RSS MiB" in header
    assert [r[0] for r in rows] == ["3 s"]
    assert not any("failed" in cell for r in rows for cell in r)
    assert all(float(r[2]) > 0 and float(r[5]) > 0 for r in rows)


def test_write_section_replaces_only_its_section(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\n## A\n\nold a\n\n## B\n\nold b\n")
    harness.write_section("A", "new a", path)
    harness.write_section("C", "new c", path)
    assert path.read_text() == "# Results\n\n## A\n\nnew a\n\n## B\n\nold b\n\n## C\n\nnew c\n"


def test_parity_script_counts_streamed_codes(debug_codec: Codec) -> None:
    from benchmarks.streaming.parity import count_differences
    from tests.conftest import speech_like

    wav = speech_like(16000 + 123)
    differ, total = count_differences(debug_codec, wav, 16000, chunk_frames=3)
    frames = -(-wav.shape[-1] // debug_codec.hop_length)
    assert total == frames * debug_codec.total_codebooks
    assert differ == 0


def test_streaming_compare_script_times_presets_side_by_side(results: Path) -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "streaming" / "compare.py"), "--configs", "debug"]
    cmd += ["single_codebook_16k", "--rounds", "2", "--frames", "3", "--warmup", "1"]
    done = subprocess.run([*cmd, "--write-results", str(results)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    text = results.read_text()
    assert OTHER_SECTION in text and "## Streaming cost: next default model against today's" in text
    header, body = table_rows(text, "preset")
    assert [row[0] for row in body] == ["debug", "single_codebook_16k"]
    assert body[0][header.index("ratio")] == "1.000" and float(body[1][header.index("ratio")]) > 0
    assert "x the encode + decode cost of `debug` per frame" in text
