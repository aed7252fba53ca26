"""Interrupted and competing runs leave nothing behind: signals, SIGKILL, two writers, a full disk."""

from __future__ import annotations

import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.atomic import Output
from codec.checkpoint import save_model
from codec.tokenfile import write_codes
from tests.conftest import speech_like
from tests.faults import kit as K

CLI = K.cli_command()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, debug_codec: Codec) -> Path:
    return save_model(debug_codec.model, tmp_path_factory.mktemp("model") / "debug")


@pytest.fixture(scope="module")
def long_tokens(tmp_path_factory, debug_codec: Codec) -> Path:
    """Five minutes of tokens: decoding takes seconds, long enough to be interrupted."""
    wav = torch.randn(1, 1, 16000 * 300, generator=torch.Generator().manual_seed(0)) * 0.1
    return write_codes(tmp_path_factory.mktemp("tok") / "long.cdc", debug_codec.encode(wav, 16000))


def _default_signals() -> None:
    # A shell starts background jobs with SIGINT ignored (and nohup ignores SIGHUP), and an
    # ignored signal stays ignored across exec: the runs under test get the dispositions a
    # terminal gives them, whatever the test run itself was started under.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _start(argv: list, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_signals,
        **kwargs,
    )


def _wait_for(folder: Path, pattern: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
)
def test_a_signal_mid_write_leaves_nothing(tmp_path, model_dir, long_tokens, sig, status) -> None:
    out = tmp_path / "new" / "out.wav"
    proc = _start(["decode", long_tokens, "-o", out, "--model", model_dir])
    _wait_for(out.parent, ".out.wav.*codec-tmp*", proc)
    proc.send_signal(sig)
    assert proc.wait(60) == status
    err = proc.stderr.read().decode()
    assert err.strip() == f"codec: interrupted{'' if sig == signal.SIGINT else f' ({sig.name})'}"
    assert list(tmp_path.iterdir()) == []  # no temp file, no lock, not even the folder it made


def test_signals_at_random_moments_never_leave_a_partial_file(tmp_path, model_dir, long_tokens) -> None:
    whole = tmp_path / "whole.flac"
    done = subprocess.run([*CLI, *map(str, ["decode", long_tokens, "-o", whole, "--model", model_dir])])
    assert done.returncode == 0
    want = sf.read(whole)[0]
    runs = tmp_path / "runs"
    runs.mkdir()
    rng = random.Random(7)
    for i in range(6):
        out = runs / f"o{i}.flac"
        proc = _start(["decode", long_tokens, "-o", out, "--model", model_dir])
        time.sleep(rng.uniform(0.0, 4.0))
        proc.send_signal(rng.choice([signal.SIGTERM, signal.SIGINT, signal.SIGHUP]))
        code = proc.wait(120)
        # Before the handlers are installed a signal kills the interpreter (negative status):
        # nothing was written yet then either.
        assert code in (0, 129, 130, 143) or code < 0, (code, proc.stderr.read())
        left = sorted(p.name for p in runs.iterdir())
        # A signal that lands after the output was committed (while the process exits) still
        # ends it with the signal's status: the output is then whole, never partial.
        assert left == [out.name] if code == 0 else left in ([], [out.name]), left
        if left:
            assert np.array_equal(sf.read(out)[0], want), f"run {i} (exit {code}) left a partial {out.name}"
            out.unlink()
    # The last moment: the output has just been committed and the process is exiting.
    out = runs / "late.flac"
    proc = _start(["decode", long_tokens, "-o", out, "--model", model_dir])
    _wait_for(runs, out.name, proc, timeout=120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) in (0, 143, -signal.SIGTERM)
    assert sorted(p.name for p in runs.iterdir()) == [out.name]
    assert np.array_equal(sf.read(out)[0], want)


def test_sigkill_leftovers_are_cleaned_by_the_next_run(tmp_path, model_dir, long_tokens) -> None:
    out = tmp_path / "out.wav"
    proc = _start(["decode", long_tokens, "-o", out, "--model", model_dir])
    _wait_for(tmp_path, ".out.wav.*codec-tmp*", proc)
    proc.kill()
    proc.wait(60)
    assert any(p.name.startswith(".out.wav.") for p in tmp_path.iterdir())  # SIGKILL cannot clean up
    argv = [*CLI, "decode", long_tokens, "-o", out, "--model", model_dir]
    done = subprocess.run(argv, capture_output=True, cwd="/")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_a_second_writer_of_the_same_output_is_refused(tmp_path, model_dir, long_tokens) -> None:
    out = tmp_path / "out.wav"
    argv = [*CLI, "decode", long_tokens, "-o", out, "--model", model_dir, "--force"]
    with Output(out, replace=False):  # another process is writing out.wav
        second = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and "another codec process is writing" in second.stderr
        assert str(out) in second.stderr
    assert list(tmp_path.iterdir()) == []
    assert subprocess.run(argv, capture_output=True, cwd=tmp_path).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_a_second_encoder_is_refused_even_with_force(tmp_path, model_dir) -> None:
    from codec import save_audio

    wav = tmp_path / "in.wav"
    save_audio(wav, speech_like(1600), 16000)
    argv = [*CLI, "encode", wav, "-o", tmp_path / "x.cdc", "--model", model_dir]
    for extra in ([], ["--force"], ["--block-seconds", "0.1"]):
        with Output(tmp_path / "x.cdc", replace=False):  # the first writer, still at work
            run = subprocess.run([*argv, *extra], capture_output=True, text=True, cwd="/")
        assert run.returncode == 1 and "another codec process is writing" in run.stderr, run.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_an_io_error_naming_the_file_and_folder_mode_goes_on(
    tmp_path, model_dir, long_tokens, debug_codec
) -> None:
    """The file-size limit stands in for a full disk: the write fails part way through."""
    out = tmp_path / "out.wav"
    run = subprocess.run(
        [*CLI, "decode", long_tokens, "-o", out, "--model", model_dir],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size(200_000),
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr.count("\n") == 1 and str(out) in run.stderr and "cannot write" in run.stderr
    assert "internal error" not in run.stderr and list(tmp_path.iterdir()) == []
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "a_long.cdc").write_bytes(long_tokens.read_bytes())
    write_codes(folder / "b_short.cdc", debug_codec.encode(speech_like(1600)[None], 16000))
    run = subprocess.run(
        [*CLI, "decode", folder, "-o", tmp_path / "wav", "--model", model_dir],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size(200_000),
    )
    assert run.returncode == 1, run.stderr
    assert "a_long.wav" in run.stderr and "1 of 2 files failed" in run.stderr
    assert sorted(p.name for p in (tmp_path / "wav").iterdir()) == ["b_short.wav"]


# A child forked from this (large) test process inherits its peak RSS as its own (Linux keeps
# the high-water mark across fork and exec), so the CLI runs under a small launcher process and
# the launcher reports the peak of its own child alone.
_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def _peak_rss_mib(argv: list, stdin: bytes | None = None) -> tuple[int, float, str]:
    run = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *CLI, *map(str, argv)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
    )
    peak_kib = int(run.stdout.decode().split()[-1])
    return run.returncode, peak_kib / 1024, run.stderr.decode()


def test_odd_rates_keep_memory_flat(tmp_path, model_dir) -> None:
    """44101 Hz shares no factor with 16 kHz: the resampler must not build a gigabyte filter."""
    from codec import save_audio

    save_audio(tmp_path / "r.wav", speech_like(44101, 44101), 44101)
    code, peak, err = _peak_rss_mib(
        ["encode", tmp_path / "r.wav", "-o", tmp_path / "r.cdc", "--model", model_dir]
    )
    assert code == 0, err
    assert peak < 1500, peak  # importing torch alone is about 650 MiB
    code, peak, err = _peak_rss_mib(
        [
            "decode",
            tmp_path / "r.cdc",
            "-o",
            tmp_path / "r.wav",
            "--force",
            "--sample-rate",
            "96001",
            "--model",
            model_dir,
        ]
    )
    assert code == 0 and peak < 1500, (peak, err)


def test_slow_pcm_rates_read_blocks_by_time_not_bytes(tmp_path, model_dir) -> None:
    """At 10 Hz, 64 KiB of PCM is an hour of audio; blocks follow --block-seconds instead."""
    pcm = (torch.randn(12000) * 3000).to(torch.int16).numpy().tobytes()
    argv = ["encode", "-", "-o", tmp_path / "x.cdc", "--sample-rate", "10", "--model", model_dir]
    code, peak, err = _peak_rss_mib(argv, stdin=pcm)
    assert code == 0 and peak < 1500, (peak, err)
