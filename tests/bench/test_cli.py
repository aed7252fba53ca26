"""``codec bench quality`` end to end on a tiny model and three short files; the cache; the HTML page."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec.checkpoint import save_model
from codec.cli import main
from codec.demo import example_path

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def model_dir(debug_codec, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("models") / "debug"
    save_model(debug_codec.model, folder)
    return str(folder)


@pytest.fixture
def data(tmp_path) -> Path:
    """Three short files at three rates and channel counts, cut from real speech."""
    speech, rate = sf.read(example_path(), dtype="float32")
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", speech[: int(1.2 * rate)], rate)
    stereo = np.interp(np.arange(44100) * rate / 44100, np.arange(rate), speech[rate : 2 * rate])
    sf.write(folder / "sub" / "b.flac", np.stack([stereo, 0.5 * stereo], 1), 44100)
    sf.write(folder / "c.wav", speech[2 * rate : 3 * rate : 2], 8000)
    return folder


def bench(*argv: str) -> int:
    return main(["bench", "quality", *argv, "-q"])


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_quality_end_to_end(model_dir, data, tmp_path):
    out = tmp_path / "out"
    rc = bench(
        str(data),
        "--codec",
        f"ours:{model_dir}@0.6,2.4",
        "--codec",
        "opus@6",
        "--out",
        str(out),
        "--jobs",
        "1",
    )
    assert rc == 0
    rows = list(csv.DictReader((out / "per_file.csv").open()))
    assert len(rows) == 9 and {r["file"] for r in rows} == {"a.wav", "c.wav", "sub/b.flac"}
    assert all(r["pesq_wb"] and r["stoi"] and r["si_sdr"] and not r["error"] for r in rows)
    s = summary(out)
    assert [x["kbps"] for x in s["settings"]] == [0.6, 2.4, 6.0]
    ours_low, ours_high, opus = s["settings"]
    assert ours_low["achieved_kbps"] == pytest.approx(0.6, rel=0.02)  # whole frames round up a little
    assert opus["achieved_kbps"] > 6 and opus["codebook_usage"] is None
    assert len(ours_high["codebook_usage"]) == 4 and ours_high["codebook_usage"][0]["perplexity"] > 1
    for setting in s["settings"]:
        st = setting["metrics"]["pesq_wb"]
        assert st["n"] == 3 and st["ci95"] > 0 and 1 <= st["mean"] <= 4.65
    md = (out / "summary.md").read_text()
    assert "| ours (debug) | 0.6 |" in md and "±" in md and "16000 Hz" in md
    for png in ("metric_pesq_wb.png", "metric_si_sdr.png", "spectrogram_best.png", "spectrogram_worst.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count("<audio") == 3 * 4 and page.count("data:audio/flac;base64,") == 12
    assert "data:image/png;base64," in page and "src='file:" not in page


def test_rerun_reuses_the_cache_and_adds_only_what_is_new(model_dir, data, tmp_path):
    out = tmp_path / "out"
    args = [str(data), "--codec", f"ours:{model_dir}@1.2", "--out", str(out), "--jobs", "0"]
    assert bench(*args) == 0
    first = summary(out)
    assert first["run"].startswith("3 pairs computed, 0 reused")
    assert bench(*args) == 0
    assert summary(out)["run"].startswith("0 pairs computed, 3 reused")
    assert summary(out)["settings"] == first["settings"]
    assert bench(*args, "--codec", "opus@9") == 0  # one more codec: only its pairs are coded
    assert summary(out)["run"].startswith("3 pairs computed, 3 reused")
    sf.write(data / "a.wav", sf.read(data / "a.wav")[0] * 0.5, 16000)  # a changed file is scored again
    assert bench(*args, "--codec", "opus@9") == 0
    assert summary(out)["run"].startswith("2 pairs computed, 4 reused")


def test_bad_files_are_listed_not_fatal(model_dir, data, tmp_path, capsys):
    sf.write(data / "silent.wav", np.zeros(8000, np.float32), 16000)
    (data / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "out"
    assert bench(str(data), "--codec", f"ours:{model_dir}@0.6", "--out", str(out), "--jobs", "0") == 0
    reasons = {(m["file"], m["metric"]): m["reason"] for m in summary(out)["not_scored"]}
    assert "not a readable audio file" in reasons[("broken.wav", "all")]
    assert "silent" in reasons[("silent.wav", "pesq_wb")]
    assert summary(out)["settings"][0]["metrics"]["pesq_wb"]["n"] == 3


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--codec", "vorbis@6"], "unknown codec"),
        (["--codec", "opus@6", "--metrics", "nope"], "unknown or unavailable"),
        (["--codec", "lyra@3.3"], "multiple of 0.2"),
    ],
)
def test_bad_input_is_one_line(data, tmp_path, capsys, argv, words):
    assert bench(str(data), *argv, "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert bench(str(tmp_path / "missing"), "--codec", "opus@6", "--out", str(tmp_path / "o")) == 2


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no Chromium (Debian: apt-get install chromium)")
def test_report_page_opens_in_a_real_browser(model_dir, data, tmp_path):
    out = tmp_path / "out"
    assert (
        bench(
            str(data),
            "--codec",
            f"ours:{model_dir}@2.4",
            "--codec",
            "opus@6",
            "--out",
            str(out),
            "--jobs",
            "0",
        )
        == 0
    )
    page = (out / "report.html").as_uri()
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    # The page's own check: every player decoded its FLAC, every plot loaded.
    assert 'data-players="9"' in dom and "9 of 9 players ready" in dom
    images = dom.count("<img ")
    assert images >= 6 and f"{images} of {images} images loaded" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, "--window-size=1200,1600", f"--screenshot={shot}", page], capture_output=True, timeout=120
    )
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1200) and pixels.std() > 0.05  # drawn, not a blank page
