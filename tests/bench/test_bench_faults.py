"""Hostile inputs to ``codec bench``: names that are not UTF-8, renamed or identical files, a
package installed after a run, a metric worker killed, and outputs or lengths that cannot work."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import soundfile as sf

from codec.bench import quality
from codec.bench.scoring import Scores, score_task
from codec.checkpoint import save_model
from codec.cli import main
from tests.conftest import speech_like

pytest.importorskip("matplotlib")

# The pair a worker dies on (see killing_score_task): references this long at 16 kHz.
VICTIM_SAMPLES = 11_111


def killing_score_task(task: tuple) -> Scores:
    """:func:`score_task` in a worker that dies (SIGKILL) on the victim's pair, every time."""
    if len(task[0]) == VICTIM_SAMPLES:
        os.kill(os.getpid(), signal.SIGKILL)
    return score_task(task)


@pytest.fixture(scope="module")
def model_dir(debug_codec, tmp_path_factory) -> str:
    return str(save_model(debug_codec.model, tmp_path_factory.mktemp("models") / "debug"))


def _clip(path: Path, samples: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), speech_like(samples, seed=seed).T.numpy(), 16000)
    return path


def _bench(*argv: str) -> int:
    return main(["bench", "quality", *argv, "-q"])


def _rows(out: Path) -> list[dict]:
    return list(csv.DictReader((out / "per_file.csv").open(encoding="utf-8")))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_file_name_that_is_not_utf8_reaches_the_report(model_dir, tmp_path) -> None:
    data = tmp_path / "data"
    _clip(Path(os.fsdecode(os.fsencode(data) + b"/\xff.wav")), 16000, seed=1)
    _clip(data / "ok.wav", 16000, seed=2)
    out = tmp_path / "out"
    assert _bench(str(data), "--codec", f"ours:{model_dir}@1.2", "--out", str(out), "--jobs", "0") == 0
    assert sorted(r["file"] for r in _rows(out)) == ["\\xff.wav", "ok.wav"]
    assert "\\xff.wav" in (out / "report.html").read_text(encoding="utf-8")


def test_names_follow_the_files_not_the_cache(model_dir, tmp_path) -> None:
    data = tmp_path / "data"
    _clip(data / "a.wav", 16000, seed=1)
    _clip(data / "b.wav", 12000, seed=2)
    out = tmp_path / "out"
    args = ["--codec", f"ours:{model_dir}@1.2", "--out", str(out), "--jobs", "0"]
    assert _bench(str(data), *args) == 0
    (data / "a.wav").rename(data / "renamed.wav")  # the same contents under a new name
    shutil.copy(data / "b.wav", data / "copy_of_b.wav")  # identical contents, two names
    assert _bench(str(data), *args) == 0
    assert sorted(r["file"] for r in _rows(out)) == ["b.wav", "copy_of_b.wav", "renamed.wav"]
    assert json.loads((out / "summary.json").read_text())["run"].startswith("0 pairs computed, 3 reused")
    # Two files of one name in two folders: each keeps a name of its own (the path as given).
    x, y = _clip(tmp_path / "x" / "b.flac", 16000, seed=3), _clip(tmp_path / "y" / "b.flac", 8000, seed=4)
    assert _bench(str(x), str(y), *args) == 0
    rows = _rows(out)
    assert sorted(r["file"] for r in rows) == sorted([str(x), str(y)])
    assert len({r["pesq_wb"] for r in rows}) == 2  # two files scored, not one name's mean


def test_a_metric_skipped_for_a_missing_package_is_scored_once_it_is_installed(
    model_dir, tmp_path, monkeypatch
) -> None:
    from codec.bench import scoring

    data = tmp_path / "data"
    _clip(data / "a.wav", 16000)
    out = tmp_path / "out"
    args = [str(data), "--codec", f"ours:{model_dir}@1.2", "--out", str(out), "--jobs", "0"]

    def missing(*_):
        raise ModuleNotFoundError("No module named 'pesq'")

    monkeypatch.setitem(scoring.FUNCTIONS, "pesq_wb", missing)
    assert _bench(*args) == 0
    assert not _rows(out)[0]["pesq_wb"]
    monkeypatch.undo()  # the package is there now
    assert _bench(*args) == 0
    assert float(_rows(out)[0]["pesq_wb"]) > 1


def test_a_killed_metric_worker_fails_only_its_pair(model_dir, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    for n, samples in enumerate((16000, VICTIM_SAMPLES, 14000, 15000)):
        _clip(data / f"f{n}.wav", samples, seed=n)
    monkeypatch.setattr(quality, "score_task", killing_score_task)
    out = tmp_path / "out"
    assert _bench(str(data), "--codec", f"ours:{model_dir}@1.2", "--out", str(out), "--jobs", "2") == 0
    rows = {r["file"]: r for r in _rows(out)}
    assert set(rows) == {"f0.wav", "f1.wav", "f2.wav", "f3.wav"}
    assert all(rows[f]["pesq_wb"] for f in ("f0.wav", "f2.wav", "f3.wav"))
    assert not rows["f1.wav"]["pesq_wb"]
    reasons = {m["file"]: m["reason"] for m in json.loads((out / "summary.json").read_text())["not_scored"]}
    assert reasons == {"f1.wav": quality.WORKER_DIED}


def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    model_dir, tmp_path, capsys, monkeypatch
):
    _clip(tmp_path / "a.wav", 8000)
    (tmp_path / "file").write_text("x")

    def no_work(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(quality, "run_quality", no_work)
    codec = ["--codec", f"ours:{model_dir}@1.2"]
    assert _bench(str(tmp_path / "a.wav"), *codec, "--out", str(tmp_path / "file")) == 2
    assert "is a file" in _one_line(capsys)
    assert _bench(str(tmp_path / "a.wav"), *codec, "--out", str(tmp_path / "file" / "sub")) == 2
    assert "not a writable folder" in _one_line(capsys)
    speed = ["bench", "speed", *codec, "--out", str(tmp_path / "s")]
    assert main([*speed, "--seconds", "0.01"]) == 2
    assert "--seconds must be at least" in _one_line(capsys)
    assert main([*speed[:-2], "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in _one_line(capsys)


def test_bench_speed_says_when_a_setting_failed(model_dir, tmp_path, capsys, monkeypatch) -> None:
    from codec.bench import speed

    def one_failed(adapters, *args):
        return [speed.SpeedResult(a.name, a.spec, error="StatisticsError: no\nframes") for a in adapters], 1.0

    monkeypatch.setattr(speed, "run_speed", one_failed)
    assert main(["bench", "speed", "--codec", f"ours:{model_dir}@1.2", "--out", str(tmp_path / "s")]) == 1
    assert "StatisticsError: no frames" in _one_line(capsys)
    assert (tmp_path / "s" / "speed.md").is_file()  # the others' numbers are still written
