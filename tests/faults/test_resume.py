"""A folder run killed with SIGKILL, then run again with ``--skip-existing``: every output ends up
complete and equal to encoding its file alone, and nothing the killed run left stays behind."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.checkpoint import save_model
from codec.pipeline import encode_file
from codec.tokenfile import read_codes
from tests.conftest import speech_like
from tests.faults import kit as K

CLI = K.cli_command()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, debug_codec: Codec) -> Path:
    return save_model(debug_codec.model, tmp_path_factory.mktemp("model") / "debug")


def _kill_mid_write(argv: list, out: Path, done_first: int, timeout: float = 60.0) -> None:
    """Start ``codec argv``; SIGKILL it once ``done_first`` outputs exist and another is being written."""
    proc = subprocess.Popen([*CLI, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not (len(list(out.rglob("*.cdc"))) >= done_first and list(out.rglob(".*codec-tmp*"))):
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()!r}"
        assert time.monotonic() < deadline, "the run never got that far"
        time.sleep(0.005)
    proc.kill()
    proc.wait(60)
    proc.stdout.close()
    proc.stderr.close()


def test_a_killed_folder_encode_is_finished_by_a_skip_existing_rerun(
    tmp_path, model_dir, debug_codec
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    names = [f"f{i}.wav" if i % 2 else f"sub/f{i}.wav" for i in range(5)]
    for i, name in enumerate(names):
        sf.write(src / name, speech_like(16000 * 4, seed=i).T.numpy(), 16000)
    argv = ["encode", src, "-o", out, "--model", model_dir, "-q", "--block-seconds", "0.5"]

    _kill_mid_write(argv, out, done_first=2)
    hidden = [p.name for p in out.rglob(".*")]
    assert any(".codec-tmp" in n for n in hidden), hidden  # SIGKILL leaves its temporary file
    written = sorted(out.rglob("*.cdc"))
    assert 2 <= len(written) < len(names)
    K.cut(written[0], 0.6)  # and one output that something else cut short

    again = subprocess.run([*CLI, *map(str, [*argv, "--skip-existing"])], capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert K.listing(out) == sorted(
        {"sub", *(n.replace(".wav", ".cdc") for n in names)}
    )  # every output, no temporary or lock file
    for name in names:
        alone = encode_file(debug_codec, src / name)
        got = read_codes(out / name.replace(".wav", ".cdc"))
        assert torch.equal(got.codes, alone.codes) and torch.equal(got.lengths, alone.lengths), name
