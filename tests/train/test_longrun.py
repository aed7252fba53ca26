"""The long run's tools, end to end on the debug model: start, status, save, a restart from the
saved weights when the run folder is gone, and a curve row with its RESULTS section and plot.

Run as a user runs them (child processes from the repository root), for a few steps each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from benchmarks.training.longrun import Run, checkpoints, keeps_float32, pid_alive, progress, run_for, scalars

REPO = Path(__file__).resolve().parents[2]


def _tool(module: str, *args: str, paths: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.training.{module}", *args, *paths],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _preset(tmp_path: Path, audio: Path, val: Path) -> Path:
    doc = yaml.safe_load((REPO / "configs" / "debug.yaml").read_text())
    doc["model"]["name"] = "longrun_debug"
    train = doc["train"]
    train.update(max_steps=12, ema_decay=0.9)
    train["data"].update(train=[str(audio)], val=[str(val)])
    train["checkpoint"] = {"every_n_steps": 6, "keep_last": 2}
    train["logging"].update(every_n_steps=2, val_every_n_steps=1000)
    train["discriminator"]["start_step"] = None
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _wait(run, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while pid_alive(run) is not None:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(1.0)


def test_run_starts_resumes_from_saved_weights_and_its_curve_is_written(tmp_path, audio_dir, val_dir):
    preset = _preset(tmp_path, audio_dir, val_dir)
    runs, home = tmp_path / "runs", tmp_path / "home"
    paths = ["--preset", str(preset), "--runs", str(runs), "--home", str(home)]
    run = run_for(preset, runs, home)

    assert "started a new run folder from the preset" in _tool("longrun", "start", paths=paths)
    _wait(run)
    assert [s for s, _ in checkpoints(run)] == [6, 12]
    assert "not running" in _tool("longrun", "status", paths=paths)
    assert "step 12 (this run folder: 12" in _tool("longrun", "status", paths=paths)

    assert "step 12" in _tool("longrun", "save", paths=paths)
    assert json.loads((home / "longrun_debug" / "state.json").read_text())["step"] == 12
    saved = load_file(home / "longrun_debug" / "weights" / "model.safetensors")
    assert {t.dtype for t in saved.values() if t.is_floating_point()} == {torch.float16}

    # The machine lost the run folder: the next start continues from the saved weights, and
    # its steps count after the saved step.
    subprocess.run(["rm", "-r", str(run.folder)], check=True)
    assert "started a new run folder from" in _tool("longrun", "start", paths=paths)
    _wait(run)
    started = yaml.safe_load((run.folder / "preset.yaml").read_text())
    assert started["train"]["init_from"] == str((home / "longrun_debug" / "weights").resolve())
    assert "step 24 (this run folder: 12" in _tool("longrun", "status", paths=paths)

    # A second start resumes the run folder's newest checkpoint rather than starting afresh.
    out = _tool("longrun", "start", paths=[*paths])
    assert "resumed from" in out and "step0000012.ckpt" in out
    _wait(run)

    results = tmp_path / "RESULTS.md"
    ckpt = str(checkpoints(run)[-1][1])
    args = ["--dev", str(val_dir), "--bitrates", "0.6,1.2", "--results", str(results)]
    _tool("curve", "eval", ckpt, *args, paths=paths)
    rows = json.loads((home / "longrun_debug" / "curve.json").read_text())
    assert [r["step"] for r in rows] == [24] and set(rows[0]["kbps"]) == {"0.6", "1.2"}
    assert rows[0]["kbps"]["1.2"]["pesq_wb"]["mean"] > 0 and rows[0]["cpu_hours"] > 0
    text = results.read_text()
    assert "## Learning curve: longrun_debug" in text and "| 24 |" in text
    assert (home / "longrun_debug" / "curve.png").stat().st_size > 1000

    # A cooldown branches off the run's newest checkpoint into a folder of its own, decays the
    # rate over its steps, and leaves the run where it was.
    before = checkpoints(run)
    out = _tool("longrun", "cooldown", "--steps", "6", paths=paths)
    assert "resumed from" in out and "step0000012.ckpt" in out
    branch = run_for(preset, runs, home, "cooldown")
    _wait(branch)
    assert checkpoints(run) == before
    assert [s for s, _ in checkpoints(branch)][-1] == 18
    assert "step 30 (this run folder: 18" in _tool("longrun", "status", "--branch", "cooldown", paths=paths)
    rates = [(step, value) for _, step, value in scalars(branch, "train/lr")]
    assert rates[-1][1] < 0.2 * max(r for _, r in rates) and min(s for s, _ in rates) >= 12
    _tool("curve", "eval", str(checkpoints(branch)[-1][1]), *args, "--branch", "cooldown", paths=paths)
    assert "Cooldown branch" in results.read_text() and "| 30 |" in results.read_text()
    assert json.loads((home / "longrun_debug" / "curve.json").read_text())[-1]["step"] == 24


def test_cpu_hours_count_each_interval_times_its_threads(tmp_path) -> None:
    """Logged steps every 100 s: one hour on one thread, then a start on two threads and one
    more hour: 3 CPU-hours, 2 of wall time; a pause longer than 10 minutes counts nothing."""
    from torch.utils.tensorboard import SummaryWriter

    run = Run(tmp_path / "preset.yaml", "r", tmp_path / "runs", tmp_path / "home")
    (run.folder / "tensorboard").mkdir(parents=True)
    t0 = 1_000_000.0
    writer = SummaryWriter(str(run.folder / "tensorboard"))
    walls = [t0 + 100 * i for i in range(37)] + [t0 + 3600 + 1200 + 100 * i for i in range(37)]
    for step, wall in enumerate(walls):
        writer.add_scalar("train/loss/total", 1.0, step, walltime=wall)
    writer.close()
    assert progress(run)["cpu_hours"] == pytest.approx(2.0)  # no record: one thread throughout
    run.threads_file.write_text(
        json.dumps({"wall_time": t0 - 5, "threads": 1})
        + "\n"
        + json.dumps({"wall_time": t0 + 3600 + 1100, "threads": 2})
        + "\n"
    )
    assert progress(run)["cpu_hours"] == pytest.approx(3.0)


def test_a_preset_that_freezes_modules_saves_float32_so_its_codes_do_not_move(tmp_path) -> None:
    # float16 rounding of a frozen encoder or quantizer changes some codes of the model it keeps.
    assert keeps_float32(REPO / "configs" / "lyra_rvq_16k_v2.yaml")
    assert not keeps_float32(REPO / "configs" / "speech_16k_v2.yaml")
    doc = yaml.safe_load((REPO / "configs" / "debug.yaml").read_text())
    doc["train"]["freeze"] = ["quantizer"]
    (tmp_path / "frozen.yaml").write_text(yaml.safe_dump(doc))
    assert keeps_float32(tmp_path / "frozen.yaml")


def test_a_bundled_models_long_run_is_a_reference_line_at_the_step_it_shipped(tmp_path) -> None:
    from benchmarks.training.curve import references
    from codec import pretrained

    name = pretrained.DEFAULT_MODEL
    if name not in pretrained.available():
        pytest.skip("no bundled weights in this checkout")
    config = json.loads((pretrained.model_dir(name) / "config.json").read_text())
    shipped = config["metadata"]["training_step"]

    def row(step: int, pesq: float) -> dict:
        return {"step": step, "kbps": {"6": {"pesq_wb": {"mean": pesq, "ci95": 0.05}}}}

    for run_name in (name, "not_bundled"):
        (tmp_path / run_name).mkdir()
        rows = [row(0, 1.0), row(shipped, 2.5), row(shipped + 5000, 2.7)]
        (tmp_path / run_name / "curve.json").write_text(json.dumps(rows))
    refs = references(tmp_path)
    assert refs[f"ours ({name}, bundled)"] == [(6.0, 2.5)]
    assert not any("not_bundled" in label for label in refs)
    assert f"ours ({name}, bundled)" not in references(tmp_path, exclude=name)
