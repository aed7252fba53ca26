"""``--model KIND:FOLDER`` on every command: encode, decode, info, demo, tokenize and bench with
tiny random EnCodec, DAC and Mimi models (the API's codes, the fingerprint, refusals)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.cli import main
from codec.pipeline.audiofile import load_audio
from codec.tokenfile import read_codes
from tests.conftest import speech_like

TRANSFORMERS = ["encodec", "dac", "mimi"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "a.wav"
    sf.write(path, speech_like(19000, 16000, seed=11, channels=2).T.numpy(), 16000, subtype="FLOAT")
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("kind", TRANSFORMERS)
def test_encode_decode_and_info(kind: str, tiny_dirs, loaded, clip, tmp_path, capsys) -> None:
    spec, b = f"{kind}:{tiny_dirs[kind]}", loaded[kind]
    assert main(["encode", str(clip), "-o", str(tmp_path / "a.cdc"), "--model", spec, "-q"]) == 0
    codes = read_codes(tmp_path / "a.cdc")
    audio = load_audio(clip)
    assert codes == b.encode(audio.wav[None], 16000)  # the API's codes, the fingerprint in the file
    assert (
        main(["decode", str(tmp_path / "a.cdc"), "-o", str(tmp_path / "b.wav"), "--model", spec, "-q"]) == 0
    )
    out = load_audio(tmp_path / "b.wav")
    assert out.sample_rate == 16000 and out.wav.shape == (2, 19000)
    assert torch.allclose(
        out.wav, b.decode(codes, sample_rate=16000)[0].clamp(-1, 1), atol=1e-4
    )  # 16-bit WAV
    capsys.readouterr()
    assert main(["decode", str(tmp_path / "a.cdc"), "-o", str(tmp_path / "c.wav"), "-q"]) == 2
    assert f"pass --model {kind}:HUB_ID_OR_FOLDER" in one_line(capsys) and not (tmp_path / "c.wav").exists()
    other = "dac" if kind != "dac" else "encodec"
    argv = [
        "decode",
        str(tmp_path / "a.cdc"),
        "-o",
        str(tmp_path / "c.wav"),
        "--model",
        f"{other}:{tiny_dirs[other]}",
    ]
    assert main(argv) == 2
    assert f"made by model '{kind}:" in one_line(capsys) and not (tmp_path / "c.wav").exists()
    assert main(["info", "--model", spec, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["backend"], info["fingerprint"], info["streams"]) == (kind, b.fingerprint, kind == "mimi")
    assert info["codebooks"] == b.total_codebooks and info["bitrate_bps"] == pytest.approx(b.bitrate())
    assert main(["info", str(tmp_path / "a.cdc"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == b.fingerprint


def test_demo_and_bad_models_are_one_line(tiny_dirs, clip, tmp_path, capsys) -> None:
    assert main(["demo", "--model", f"dac:{tiny_dirs['dac']}", "-n", "2"]) == 0
    assert "-> codes [1, 2, " in capsys.readouterr().out
    for model, words in [
        (f"dac:{tmp_path / 'nowhere'}", "no such folder"),
        ("vorbis:x", "unknown model kind 'vorbis'"),
        # a DAC folder is no SNAC model; without the snac package, the package is what is named
        (f"snac:{tiny_dirs['dac']}", "snac:" if importlib.util.find_spec("snac") else "pip install snac"),
    ]:
        assert main(["encode", str(clip), "-o", str(tmp_path / "x.cdc"), "--model", model, "-q"]) == 2
        assert words in one_line(capsys)
    argv = ["encode", str(clip), "-o", str(tmp_path / "x.cdc"), "--model", f"dac:{tiny_dirs['dac']}"]
    assert main([*argv, "--num-codebooks", "9"]) == 2
    assert "--num-codebooks 9 is out of range: model 'dac:dac' has 1..4 codebooks" in one_line(capsys)
    assert not (tmp_path / "x.cdc").exists()


@pytest.mark.parametrize("kind", TRANSFORMERS)
def test_tokenize_and_the_dataset(kind: str, tiny_dirs, loaded, tmp_path, capsys) -> None:
    from codec.tokenize import TokenDataset
    from tests.data.kit import CLIPS, alone, make_corpus, read_rows

    corpus, out, spec = make_corpus(tmp_path / "corpus"), tmp_path / "tokens", f"{kind}:{tiny_dirs[kind]}"
    # One item per batch: every row must then be exactly its file encoded alone.
    argv = [
        "tokenize",
        str(corpus),
        "-o",
        str(out),
        "--model",
        spec,
        "--device",
        "cpu",
        "--batch-seconds",
        "0.01",
    ]
    assert main([*argv, "-q"]) == 0
    ds = TokenDataset(out)
    assert len(ds) == len(CLIPS)
    index = json.loads((out / "index.json").read_text())
    assert index["model"]["fingerprint"] == loaded[kind].fingerprint
    for i in range(len(ds)):
        item = ds[i]
        want = alone(loaded[kind], corpus / f"{item['id']}.wav")
        assert np.array_equal(item["codes"].numpy(), want), item["id"]
    rows = read_rows(out)  # every Parquet row carries the backend model's identity
    assert {(r["model"], r["fingerprint"]) for r in rows} == {(loaded[kind].name, loaded[kind].fingerprint)}
    capsys.readouterr()
    other = "mimi" if kind != "mimi" else "dac"
    argv[argv.index(spec)] = f"{other}:{tiny_dirs[other]}"
    assert main([*argv, "-q"]) == 2  # another backend into the same output
    assert "holds another run (another model)" in one_line(capsys)


def test_bench_quality_puts_the_backends_side_by_side(tiny_dirs, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        sf.write(data / f"{i}.wav", speech_like(12000, 16000, seed=30 + i)[0].numpy(), 16000)
    specs = [
        f"encodec:{tiny_dirs['encodec']}@1.5",
        f"dac:{tiny_dirs['dac']}@0.6",
        f"mimi:{tiny_dirs['mimi']}@0.15",
    ]
    argv = [
        "bench",
        "quality",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--jobs",
        "0",
        "-q",
        "--metrics",
        "si_sdr",
    ]
    for spec in specs:
        argv += ["--model", spec]
    assert main(argv) == 0
    settings = json.loads((tmp_path / "out" / "summary.json").read_text())["settings"]
    assert [s["kbps"] for s in settings] == [1.5, 0.6, 0.15]
    assert all(len(s["codebook_usage"]) == 2 for s in settings)
    page = (tmp_path / "out" / "report.html").read_text()
    published = page[page.index("Published figures (not measured here)") :].split("<h2>")[0]
    assert (
        "stable-codec-speech-16k</td><td>3.01</td><td>0.90" in published
        and "Stability-AI/stable-codec" in published
    )
    assert "snac (hubertsiuzdak/snac" in published and "dac (" not in published  # DAC was run: no line for it
    out = tmp_path / "ours"
    assert (
        main(["bench", "quality", str(data), "--out", str(out), "--jobs", "0", "-q", "--metrics", "si_sdr"])
        == 0
    )
    settings = json.loads((out / "summary.json").read_text())[
        "settings"
    ]  # no --codec: ours, 1.5 / 3 / 6 kbps
    assert [(s["kind"], s["kbps"]) for s in settings] == [("ours", 1.5), ("ours", 3.0), ("ours", 6.0)]
