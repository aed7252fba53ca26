"""``codec bench speed`` end to end on the debug model and Opus (shapes of the report, never a time)."""

from __future__ import annotations

import json

import numpy as np

from codec.bench.speed import harmonic_signal
from codec.checkpoint import save_model
from codec.cli import main


def test_speed_command_writes_its_tables(debug_codec, tmp_path, capsys):
    model = tmp_path / "debug"
    save_model(debug_codec.model, model)
    out = tmp_path / "speed"
    argv = ["bench", "speed", "--codec", f"ours:{model}@1.2", "--codec", "opus@6", "--out", str(out),
            "--seconds", "0.5", "--repeats", "1", "--batch", "1", "2", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads((out / "speed.json").read_text())
    ours, opus = data["results"]
    assert not ours["error"] and not opus["error"]
    assert [(r["device"], r["threads"], r["batch"]) for r in ours["rows"]][:2] == [
        ("cpu", 1, 1),
        ("cpu", 1, 2),
    ]
    assert [r["batch"] for r in opus["rows"]] == [1]  # no batch API: batch 1 only
    assert all(r["encode_rtf"] > 0 and r["decode_rtf"] > 0 for r in ours["rows"] + opus["rows"])
    assert ours["parameters"] == sum(p.numel() for p in debug_codec.model.parameters())
    assert ours["frame_ms"] == 10 and ours["stream_encode_ms"][0] > 0  # debug: hop 160 at 16 kHz
    assert opus["stream_encode_ms"] is None
    assert ours["peak_rss_mib"] >= data["floor_rss_mib"] > 0
    md = (out / "speed.md").read_text()
    assert "| ours (debug) @ 1.2 kbps | cpu | 1 | 2 |" in md and "no streaming" in md
    assert capsys.readouterr().out.startswith("# Codec speed")


def test_bad_spec_is_one_line(tmp_path, capsys):
    assert main(["bench", "speed", "--codec", "lyra@3.3", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_harmonic_signal_is_deterministic_and_in_range():
    a, b = harmonic_signal(0.5, 16000), harmonic_signal(0.5, 16000)
    assert a.shape == (8000,) and np.array_equal(a, b) and np.abs(a).max() < 1
