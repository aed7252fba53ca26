"""``codec demo`` and the reconstruction script (a use of ``codec bench``) on a small trained debug model."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from codec import Codec
from codec.demo import add_demo_parser, run_demo, run_round_trip
from codec.train.export import export_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(debug_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported") / "debug_model"
    export_checkpoint(debug_run.run_dir / "checkpoints" / "last.ckpt", out)
    return out


def test_round_trip_scores(model_dir, val_dir, tmp_path):
    codec = Codec.from_pretrained(model_dir)
    clip = sorted(val_dir.glob("*.flac"))[0]
    result = run_round_trip(codec, clip, num_codebooks=2, output=tmp_path / "out.wav")
    assert result.codes_shape[:2] == (1, 2) and result.bitrate == codec.bitrate(2)
    assert set(result.scores) == {"SI-SDR (dB)", "mel distance", "PESQ-wb", "STOI"}
    assert (tmp_path / "out.wav").is_file()


def _demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_demo_parser(parser.add_subparsers())
    return parser.parse_args(["demo", *argv])


def test_demo_command(model_dir, val_dir, capsys):
    clip = str(sorted(val_dir.glob("*.flac"))[0])
    assert run_demo(_demo_args("--model", str(model_dir), "--input", clip)) == 0
    out = capsys.readouterr().out
    assert "kbps" in out and "PESQ-wb" in out
    # A model directory without an example clip and no --input: a clear one-line error.
    assert run_demo(_demo_args("--model", str(model_dir))) == 2
    assert "no example clip" in capsys.readouterr().err
    assert run_demo(_demo_args("--model", str(model_dir), "--input", clip, "-n", "99")) == 2


def test_evaluate_script_writes_table(model_dir, val_dir, tmp_path):
    out = tmp_path / "table.md"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "reconstruction" / "evaluate.py"),
        "--model", str(model_dir), "--data", str(val_dir), "--codebooks", "1", "4",
        "--threads", "1", "--output", str(out), "--write-results", str(tmp_path / "RESULTS.md"),
        "--report", str(tmp_path / "report"), "--baselines", "opus@6", "--jobs", "1",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    text = out.read_text()
    rows = [line.split(" | ")[:2] for line in text.splitlines() if line.startswith("| ours (")]
    assert [r[1] for r in rows] == ["0.6", "2.4"] and "PESQ-wb" in text and "| Opus | 6 |" in text
    assert "Codebook usage entropy" in text and "| 3 |" in text  # four levels at 2.4 kbps
    assert (tmp_path / "report" / "summary.json").is_file() and (
        tmp_path / "report" / "report.html"
    ).is_file()
    assert "## Reconstruction quality" in (tmp_path / "RESULTS.md").read_text()
