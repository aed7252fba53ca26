"""Hostile inputs to ``codec tokenize``: two runs into one output, file names that are not
UTF-8, odd manifests, symbolic links, inputs typed from another folder, one long file, and
the first of several processes killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec import Codec
from codec.atomic import locked
from codec.cli import main
from codec.formats import path_text, text_path
from codec.model import CodecModel
from tests.conftest import speech_like
from tests.data.kit import CLIPS, alone, check_output, read_rows
from tests.faults.kit import cli_command

CLI = cli_command()


def _tokenize(inputs: list, out: Path, model_dir: Path, *extra: str) -> int:
    return main(["tokenize", *map(str, inputs), "-o", str(out), "--model", str(model_dir), "-q", *extra])


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _write(path: Path, seconds: float = 0.4, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), speech_like(round(seconds * 16000), seed=seed).T.numpy(), 16000)
    return path


def test_a_second_run_into_the_same_output_is_refused_and_a_killed_one_holds_nothing(
    corpus, model_dir, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    with locked(tmp_path / "." / "out"):  # another run holds it (under another spelling)
        assert _tokenize([corpus], out, model_dir) == 1
    assert "another codec process is writing this output right now" in _err_line(capsys)
    assert not out.exists()
    code = "import sys, time\nfrom codec.atomic import locked\nwith locked(sys.argv[1]):\n"
    code += "    print('held', flush=True)\n    time.sleep(120)\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    assert _tokenize([corpus], out, model_dir) == 1
    capsys.readouterr()
    holder.send_signal(signal.SIGKILL)  # the kernel drops the lock of a killed holder
    holder.wait()
    assert _tokenize([corpus], out, model_dir) == 0


def test_two_runs_of_different_corpora_started_together_never_mix(corpus, model_dir, tmp_path) -> None:
    other = tmp_path / "other"
    for n in range(3):
        _write(other / f"o{n}.wav", seed=10 + n)
    out = tmp_path / "out"
    argv = ["tokenize", "-o", str(out), "--model", str(model_dir), "--device", "cpu", "-q"]
    runs = [subprocess.Popen([*CLI, *argv[:1], str(src), *argv[1:]], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for src in (corpus, other)]  # fmt: skip
    codes = [r.wait(300) for r in runs]
    assert codes.count(0) == 1, [r.stderr.read() for r in runs]
    ids = {row["id"] for row in read_rows(out)}
    assert ids in ({"o0", "o1", "o2"}, {name for name, *_ in CLIPS})
    index = json.loads((out / "index.json").read_text())
    assert sorted(s["file"] for s in index["shards"]) == sorted(
        str(p.relative_to(out)) for p in (out / "shards").iterdir()
    ), "stray shards of the other run"


def test_file_names_that_are_not_utf8_are_coded(model_dir, model: Codec, tmp_path) -> None:
    folder = tmp_path / "names"
    good = _write(Path(os.fsdecode(os.fsencode(folder) + b"/\xff caf\xe9.wav")), seed=1)
    _write(folder / "plain.wav", seed=2)
    broken = Path(os.fsdecode(os.fsencode(folder) + b"/\xfe.wav"))
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    out = tmp_path / "out"
    assert _tokenize([folder], out, model_dir) == 0
    rows = {row["id"]: row for row in read_rows(out)}
    assert set(rows) == {"\\xff caf\\xe9", "plain"}
    stored = rows["\\xff caf\\xe9"]["path"]
    assert stored == path_text(good) and text_path(stored) == str(good)
    assert np.array_equal(rows["\\xff caf\\xe9"]["codes"], alone(model, good))
    errors = (out / "errors.csv").read_text().splitlines()
    assert len(errors) == 2 and errors[1].startswith("\\xfe,%2F") and "not a readable audio file" in errors[1]
    assert _tokenize([folder], out, model_dir) == 0  # the rerun finds it complete


def test_manifest_values_and_columns_that_do_not_fit(model_dir, tmp_path, capsys) -> None:
    clip = _write(tmp_path / "a.wav")
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"path": str(clip), "n": 123456789012345678901234, "k": 7}) + "\n")
    assert _tokenize([big], tmp_path / "o1", model_dir) == 0
    row = read_rows(tmp_path / "o1")[0]
    assert row["n"] == "123456789012345678901234" and row["k"] == 7
    both = tmp_path / "both.csv"
    both.write_text(f"path,sample_rate,manifest_sample_rate\n{clip},8000,44100\n")
    assert _tokenize([both], tmp_path / "o2", model_dir) == 2
    err = _err_line(capsys)
    assert "'sample_rate' and 'manifest_sample_rate' would both be carried" in err
    assert not (tmp_path / "o2").exists()


def test_symbolic_links_to_folders_are_followed_once(model_dir, model: Codec, tmp_path) -> None:
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    _write(corpus / "a.wav", seed=1)
    _write(elsewhere / "deep" / "b.wav", seed=2)
    (corpus / "linked").symlink_to(elsewhere)
    (corpus / "loop").symlink_to(corpus)  # a folder that contains itself: not followed again
    out = tmp_path / "out"
    assert _tokenize([corpus], out, model_dir) == 0
    check_output(out, model, {"a", "linked/deep/b"})
    tokens = tmp_path / "tokens"
    assert main(["encode", str(corpus), "-o", str(tokens), "--model", str(model_dir), "-q"]) == 0
    assert sorted(str(p.relative_to(tokens)) for p in tokens.rglob("*.cdc")) == ["a.cdc", "linked/deep/b.cdc"]


def test_the_same_inputs_typed_from_another_folder_are_the_same_run(
    model_dir, tmp_path, monkeypatch, capsys
) -> None:
    _write(tmp_path / "a" / "x.wav")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _tokenize(["a/x.wav", "a"], Path("O1"), model_dir) == 2  # x twice: a duplicate id
    assert "duplicate id 'x'" in _err_line(capsys)
    assert _tokenize(["a/x.wav"], Path("O"), model_dir) == 0
    monkeypatch.chdir(tmp_path / "sub")
    capsys.readouterr()
    assert _tokenize(["../a/x.wav"], Path("../O"), model_dir) == 0
    assert "already complete" in capsys.readouterr().out
    assert [row["id"] for row in read_rows(tmp_path / "O")] == ["x"]
    assert read_rows(tmp_path / "O")[0]["path"] == str(tmp_path / "a" / "x.wav")


def test_a_long_file_is_coded_in_chunks_of_batch_seconds(
    corpus, model_dir, model, tmp_path, monkeypatch
) -> None:
    calls: list[int] = []
    original = CodecModel.encode

    def counted(self, x, *args, **kwargs):
        calls.append(x.shape[-1])
        return original(self, x, *args, **kwargs)

    import codec.tokenize.encode

    whole: list[str] = []
    read = codec.tokenize.encode.load_audio
    monkeypatch.setattr(CodecModel, "encode", counted)
    monkeypatch.setattr(codec.tokenize.encode, "load_audio", lambda path: whole.append(path) or read(path))
    out = tmp_path / "out"
    assert _tokenize([corpus], out, model_dir, "--batch-seconds", "0.3") == 0
    frames = 16 * max(1, round(0.3 * model.frame_rate / 16))  # whole multiples of 16 frames
    assert max(calls) <= frames * model.hop_length, "an item longer than --batch-seconds went in whole"
    # Long files at the model's rate are read chunk by chunk too (those at 8, 22.05, 44.1 kHz
    # are resampled whole, as Codec.encode does).
    long_16k = {str(corpus / f"{n}.wav") for n, sec, rate, _ in CLIPS if rate == 16000 and sec > 0.3}
    assert len(long_16k) == 3 and not long_16k & set(whole)
    check_output(out, model, {name for name, *_ in CLIPS})  # codes exactly those of each file alone


@pytest.mark.slow
def test_when_the_first_process_is_killed_the_others_say_so_in_one_line(model_dir, tmp_path) -> None:
    corpus = tmp_path / "corpus"
    for n in range(40):
        _write(corpus / f"f{n:02d}.wav", seconds=0.3, seed=n)
    out = tmp_path / "out"
    argv = [*CLI, "tokenize", str(corpus), "-o", str(out), "--model", str(model_dir), "--device", "cpu"]
    argv += ["--devices", "2", "-q", "--shard-size", "1", "--batch-seconds", "0.2"]
    line = "codec: error: local rank 1: local rank 0, which started it, ended first; "
    line += "rerun the same command to finish\n"
    # Killed while the other process starts (it would wait hours for the rendezvous), then while
    # both code (the other's next collective fails).
    for started in (lambda: time.sleep(1.0) is None, lambda: list(out.glob("shards/shard-*.parquet"))):
        first = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 120
            while not started() and time.monotonic() < deadline:
                time.sleep(0.01)
            first.send_signal(signal.SIGKILL)
            _, err = first.communicate(timeout=60)  # the other process inherited stderr: to its end
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)  # whatever is left of the group
        assert first.returncode == -signal.SIGKILL and err == line, err
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(read_rows(out)) == 40
