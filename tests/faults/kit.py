"""Good inputs and ways to damage them, for the bad-input tables (one function per kind of damage).

The tables run ``codec`` in this process; with ``CODEC_TEST_CLI`` set (a command line, e.g.
``"codec"`` for an installed one, or another checkout's ``python -m codec.cli``) they run that
command instead, so the same cases can be tried against any build.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shlex
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codec import Codec
from codec.tokenfile import MAGIC, StreamHeader, TokenStreamWriter, header_from_codes, write_codes
from tests.conftest import speech_like


@dataclass(frozen=True)
class Kit:
    """Paths of the good inputs every case starts from (read-only for the cases)."""

    root: Path
    model: Path  # the debug model's directory
    other_model: Path  # a second model (another config)
    wav: Path  # 16 kHz, 2 s, mono
    cdc: Path  # its token file
    cdcs: Path  # its token stream
    codec: Codec


def make_kit(root: Path, codec: Codec, other: Codec) -> Kit:
    from codec.checkpoint import save_model

    model = save_model(codec.model, root / "model")
    other_model = save_model(other.model, root / "other_model")
    wav = root / "good16k.wav"
    sf.write(wav, speech_like(32000).T.numpy(), 16000, subtype="PCM_16")
    codes = codec.encode(speech_like(32000)[None], 16000)
    cdc = write_codes(root / "ok.cdc", codes)
    cdcs = root / "s.cdcs"
    cdcs.write_bytes(stream_bytes(codes))
    return Kit(root, model, other_model, wav, cdc, cdcs, codec)


def stream_bytes(codes, end: tuple[int, int] | None = None, packets: int = 3) -> bytes:
    """A token stream of one-item ``codes`` (``end`` overrides the true lengths)."""
    h = header_from_codes(codes)
    header = StreamHeader(**{f.name: getattr(h, f.name) for f in dataclasses.fields(StreamHeader)})
    buf = io.BytesIO()
    writer = TokenStreamWriter(buf, header)
    step = -(-codes.num_frames // packets)
    for i in range(0, codes.num_frames, step):
        writer.write(codes.codes[..., i : i + step])
    if end is not False:
        writer.close(*(end or (int(codes.lengths[0]), int(codes.original_lengths[0]))))
    return buf.getvalue()


def stream_header_end(data: bytes) -> int:
    """Offset of the first packet of a token stream."""
    return 14 + struct.unpack_from("<I", data, 10)[0] + 4


def resign(data: bytes) -> bytes:
    """A token file with its CRC32 recomputed: an edit a checksum cannot catch."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def edit_header(data: bytes, edit: Callable[[dict], object], sign: bool = True) -> bytes:
    """Apply ``edit`` to a token file's JSON header; fix length and (``sign``) the CRC."""
    _, version, n = struct.unpack_from("<8sHI", data)
    doc = json.loads(data[14 : 14 + n])
    result = edit(doc)
    text = result if isinstance(result, bytes) else json.dumps(doc).encode()
    blob = MAGIC + struct.pack("<HI", version, len(text)) + text + data[14 + n : -4]
    return blob + (struct.pack("<I", zlib.crc32(blob)) if sign else data[-4:])


def write_audio(path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, **kwargs) -> Path:
    wav = speech_like(max(1, round(seconds * rate)), rate, channels=channels)
    sf.write(path, wav.T.numpy(), rate, **kwargs)
    return path


def cut(path: Path, keep: float = 0.5) -> Path:
    """Keep the first ``keep`` of the file's bytes (a download that stopped)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def flac_total_samples(path: Path, value: int) -> Path:
    """Overwrite the 36-bit total-samples field of a FLAC file's STREAMINFO (0: unknown)."""
    data = bytearray(path.read_bytes())
    at = 8 + 13  # 'fLaC', the metadata block header, then 13 bytes into STREAMINFO
    data[at] = (data[at] & 0xF0) | ((value >> 32) & 0x0F)
    data[at + 1 : at + 5] = (value & 0xFFFFFFFF).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


def float_wav(path: Path, bad: float) -> Path:
    x = speech_like(16000).T.numpy().copy()
    x[100, 0] = bad
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def token_file_with(
    path: Path, codec: Codec, channels: int, frames: int = 4, num_codebooks: int | None = None
) -> Path:
    """A valid token file of zero codes with ``channels`` channels (no model run needed)."""
    from codec.tokens import Codes

    k = num_codebooks or codec.total_codebooks
    codes = Codes(
        codes=torch.zeros(channels, k, frames, dtype=torch.long),
        lengths=torch.tensor([frames * codec.hop_length]),
        sample_rate=codec.sample_rate,
        hop_length=codec.hop_length,
        codebook_size=codec.codebook_size,
        channels=channels,
        model=codec.name,
        fingerprint=codec.fingerprint,
    )
    return write_codes(path, codes)


def pcm16(samples: int = 16000) -> bytes:
    return (speech_like(samples).T.numpy() * 32767).round().astype("<i2").tobytes()


def f32(values: list[float]) -> bytes:
    return np.array(values, "<f4").tobytes()


def listing(root: Path) -> list[str]:
    """Every path under ``root`` (hidden ones included), relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def cli_command() -> list[str]:
    """How subprocess tests start ``codec``: ``CODEC_TEST_CLI`` or this checkout's module."""
    env = os.environ.get("CODEC_TEST_CLI")
    return shlex.split(env) if env else [sys.executable, "-m", "codec.cli"]


def run_case(argv: list, stdin: bytes | None, capsysbinary, monkeypatch) -> tuple[int, str]:
    """Run ``codec argv`` with ``stdin``; returns (status, stderr)."""
    code, _, err = run_cli(argv, capsysbinary, monkeypatch, stdin)
    return code, err


def run_cli(argv: list, capsysbinary, monkeypatch, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run ``codec argv`` (in this process unless ``CODEC_TEST_CLI`` is set); returns
    (status, stdout, stderr)."""
    from codec.cli import main

    if os.environ.get("CODEC_TEST_CLI"):
        run = subprocess.run(
            [*cli_command(), *map(str, argv)], input=stdin or b"", capture_output=True, cwd=os.getcwd()
        )
        return run.returncode, run.stdout.decode(errors="replace"), run.stderr.decode(errors="replace")
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main([str(a) for a in argv])
    out = capsysbinary.readouterr()
    return code, out.out.decode(errors="replace"), out.err.decode(errors="replace")


def check_one_line(err: str, status: int, fragment: str) -> None:
    """Exactly one line, the right prefix for the status, no traceback, naming the problem."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    prefix = r"codec( \w+)?: error: " if status == 2 else "codec: "
    assert re.match(prefix, lines[0]) and "internal error" not in lines[0], lines[0]
    assert fragment in lines[0], (fragment, lines[0])


def check_bad_case(tmp_path, kit, make, status, fragment, capfdbinary, monkeypatch) -> None:
    """Run one bad-input case: the status, one line naming the problem, nothing left behind."""
    before_kit = listing(kit.root)
    argv, stdin = make(tmp_path, kit)
    before = listing(tmp_path)
    code, err = run_case(argv, stdin, capfdbinary, monkeypatch)
    assert code == status, err
    check_one_line(err, status, fragment)
    assert listing(tmp_path) == before  # no output, temp file, lock or folder left behind
    assert listing(kit.root) == before_kit
