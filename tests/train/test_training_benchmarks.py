"""The training ablation harness and the prepared GPU run, end to end on the debug preset.

Both run as a user runs them (child processes from the repository root) on generated audio,
for a few steps: the harness must train each variant, score it, skip it when rerun and build
the table; the GPU script's CPU dry run must leave a loadable model and a metrics file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codec import Codec

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_ablation_harness_trains_scores_and_skips_done_variants(tmp_path, audio_dir, val_dir):
    out, results = tmp_path / "ablation", tmp_path / "RESULTS.md"
    args = [sys.executable, "-m", "benchmarks.training.ablate", "--out", str(out), "--config", "debug"]
    args += ["--init-from", "none", "--steps", "2", "--batch-size", "2", "--segment-seconds", "0.5"]
    args += ["--data", str(audio_dir), "--dev", str(val_dir), "--eval-files", "2", "--eval-seconds", "1"]
    args += ["--codebooks", "4", "2", "--threads", "1"]
    _run(*args, "--variants", "control", "decoder_only", "fine_grid", "--write-results", str(results))
    for name in ("control", "decoder_only", "fine_grid"):
        record = json.loads((out / name / "result.json").read_text())
        assert record["steps"] == 2 and record["seconds_per_step"] > 0
        assert set(record["scores"]) == {"4", "2"}
        assert {"pesq_wb", "stoi", "si_sdr", "mel_distance"} <= set(record["scores"]["4"])
    text = results.read_text()
    assert "## Training ablation" in text and text.count("| control |") == 1
    assert "| fine_grid |" in text and "Command: `python -m benchmarks.training.ablate" in text
    rerun = _run(*args, "--variants", "control")
    assert "control: done already" in rerun.stdout


def test_unknown_variant_is_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.training.ablate", "--out", str(tmp_path), "--variants", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "unknown variant 'nope'" in done.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the wrapper is a bash script for Linux machines")
def test_gpu_run_dry_run_writes_model_and_metrics(tmp_path, audio_dir, val_dir):
    out = tmp_path / "gpu"
    no_wheels = tmp_path / "wheels"
    no_wheels.mkdir()
    _run(
        "bash", "benchmarks/training/gpu_run.sh", str(out), "--dry-run", "--config", "debug",
        "--init-from", "none", "--data", str(audio_dir), "--dev", str(val_dir), "--codebooks", "4",
        env={"PYTHON": sys.executable, "CODEC_GPU_WHEELS": str(no_wheels)},
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["device"] == "cpu (dry run)" and metrics["steps"] == 3
    assert set(metrics["trained"]) == {"4"}
    codec = Codec.from_pretrained(out / "model")
    assert codec.sample_rate == 16000
    assert (out / "last.ckpt").is_file()


def test_oracle_swaps_take_each_part_from_the_right_signal():
    import torch

    from benchmarks.training.oracle import _stft, griffin_lim, swaps

    torch.manual_seed(0)
    ref = torch.randn(8000) * 0.1
    est = torch.roll(ref, 37) * 0.5  # same magnitude shape, other phase, other level
    out = swaps(ref, est)
    assert torch.equal(out["model output"], est)
    # Each swap carries the named magnitude (away from the edges, where the STFT is partial).
    mid = slice(8, -8)
    for name, source in (
        ("reference magnitude + model phase", ref),
        ("model magnitude + reference phase", est),
    ):
        got, want = _stft(out[name]).abs()[:, mid], _stft(source).abs()[:, mid]
        assert (got - want).norm() / want.norm() < 0.35, name
    # With the reference's own magnitude and phase nothing changes; Griffin-Lim gets close.
    same = swaps(ref, ref)["model magnitude + reference phase"]
    torch.testing.assert_close(same, ref, atol=1e-5, rtol=0)
    gl = griffin_lim(_stft(ref).abs(), 8000, iters=32)
    assert (_stft(gl).abs() - _stft(ref).abs()).norm() / _stft(ref).abs().norm() < 0.5


def test_speed_benchmark_times_variants_side_by_side(tmp_path, audio_dir):
    results = tmp_path / "RESULTS.md"
    args = [sys.executable, "-m", "benchmarks.training.speed", "--base", "debug", "--data", str(audio_dir)]
    args += ["--variants", "today", "v2_fp32", "--steps", "32", "--rounds", "1", "--batch-size", "2"]
    _run(*args, "--segment-seconds", "0.5", "--write-results", str(results))
    text = results.read_text()
    assert "## Training speed (steps per hour)" in text
    rows = [line.split("|") for line in text.splitlines() if line.startswith(("| today |", "| v2_fp32 |"))]
    assert [r[1].strip() for r in rows] == ["today", "v2_fp32"]
    assert rows[0][-2].strip() == "1.00" and float(rows[1][3]) > 0  # speed-up of the first; s/step
