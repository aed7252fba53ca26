"""The token file (.cdc) and token stream containers: round trips, bit packing and validation."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from codec import Codec, Codes
from codec.tokenfile import (
    MAGIC,
    STREAM_MAGIC,
    FileHeader,
    StreamHeader,
    TokenFileError,
    TokenStreamReader,
    TokenStreamWriter,
    bits_per_code,
    header_from_codes,
    pack_codes,
    parse_header,
    read_codes,
    read_header,
    unpack_codes,
    write_codes,
)
from tests.conftest import speech_like


@pytest.fixture(scope="module")
def codes(debug_codec: Codec) -> Codes:
    """Two channels at 44.1 kHz: the file must restore rate, channels and exact length."""
    return debug_codec.encode(speech_like(44100 + 123, 44100, channels=2)[None], 44100)


def _rewrite(data: bytes, edit) -> bytes:
    """Apply ``edit`` to the JSON header of a token file and fix the length and CRC."""
    _, version, n = struct.unpack_from("<8sHI", data)
    doc = json.loads(data[14 : 14 + n])
    edit(doc)
    text = json.dumps(doc).encode()
    blob = MAGIC + struct.pack("<HI", version, len(text)) + text + data[14 + n : -4]
    return blob + struct.pack("<I", zlib.crc32(blob))


def _resign(data: bytes) -> bytes:
    """The token file ``data`` with its CRC32 recomputed (a deliberate, valid edit)."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def _resign_stream(data: bytes, header_end: int) -> bytes:
    """A token stream with its header CRC32 recomputed (a deliberate, valid edit)."""
    head = data[: header_end - 4]
    return head + struct.pack("<I", zlib.crc32(head)) + data[header_end:]


def test_round_trip_restores_everything(tmp_path: Path, codes: Codes) -> None:
    path = write_codes(tmp_path / "x.cdc", codes)
    back = read_codes(path)
    assert torch.equal(back.codes, codes.codes) and back.codes.dtype == torch.int64
    assert back.lengths.tolist() == codes.lengths.tolist()
    assert back.original_lengths.tolist() == [44100 + 123] and back.original_sample_rate == 44100
    for name in ("sample_rate", "hop_length", "codebook_size", "channels", "model", "fingerprint"):
        assert getattr(back, name) == getattr(codes, name)
    header = read_header(path)
    assert header.bits_per_code == 6 and header.num_frames == codes.num_frames
    assert abs(header.duration - (44100 + 123) / 44100) < 1e-9
    # Payload is bit-packed: 6 bits per code, not 64.
    assert path.stat().st_size < 14 + 400 + codes.codes.numel() * 6 // 8 + 8
    assert [p.name for p in tmp_path.iterdir()] == ["x.cdc"]  # no temp file left


def test_truncated_codebooks_and_one_item_of_a_batch(tmp_path: Path, debug_codec: Codec) -> None:
    wav = torch.zeros(2, 1, 5000)
    wav[0, :, :5000], wav[1, :, :777] = speech_like(5000), speech_like(777, seed=3)
    batch = debug_codec.encode(wav, 16000, lengths=[5000, 777], num_codebooks=3)
    write_codes(tmp_path / "b.cdc", batch.item(1))
    back = read_codes(tmp_path / "b.cdc")
    assert back.num_codebooks == 3 and back.num_frames == 5 and back.lengths.tolist() == [777]
    assert torch.equal(back.codes, batch.item(1).codes)
    with pytest.raises(ValueError, match="one item"):
        write_codes(tmp_path / "c.cdc", batch)


@pytest.mark.parametrize("size", [2, 3, 64, 1000, 1024, 1025, 4096, 65536, 2**20 + 1])
def test_bit_packing_round_trips_at_every_width(size: int) -> None:
    bits = bits_per_code(size)
    assert bits == max(1, int(np.ceil(np.log2(size))))
    values = np.random.default_rng(size).integers(0, size, 1001)
    values[:2] = [0, size - 1]
    data = pack_codes(values, bits)
    assert len(data) == (1001 * bits + 7) // 8
    assert np.array_equal(unpack_codes(data, 1001, bits), values)


def test_packing_widths_are_1_to_32_bits() -> None:
    top = np.array([2**32 - 1, 0, 2**31])
    assert np.array_equal(unpack_codes(pack_codes(top, 32), 3, 32), top)
    for bits in (0, 33):
        with pytest.raises(ValueError, match=re.escape("bits must be in 1..32")):
            pack_codes(top, bits)


def test_packing_is_msb_first_and_sliced_seamlessly(monkeypatch) -> None:
    assert pack_codes(np.array([5, 3, 1]), 3) == bytes([0b10101100, 0b10000000])
    values = np.random.default_rng(0).integers(0, 1000, 1003)
    whole = pack_codes(values, 10)
    monkeypatch.setattr("codec.tokenfile.bitpack._PACK_SLICE", 16)
    assert pack_codes(values, 10) == whole
    assert np.array_equal(unpack_codes(whole, 1003, 10), values)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: b"", "empty file"),
        (lambda d: d[:5], "truncated"),
        (lambda d: d[:20], "truncated"),
        (lambda d: d[:-10], "truncated"),
        (lambda d: d + b"\0", r"\(1 unexpected trailing"),
        (lambda d: d[:-40] + bytes([d[-40] ^ 1]) + d[-39:], "CRC32"),
        (lambda d: d[:30] + b"#" + d[31:], "corrupt"),
        (lambda d: b"RIFF" + d[4:], "looks like a WAV"),
        (lambda d: bytes(range(256)) * 4, r"not a codec token file \(unknown leading bytes\)"),
        (lambda d: STREAM_MAGIC + d[8:], "this is a codec token stream, expected a token file"),
        # A header that parses but is inconsistent, CRC not fixed: reported as damage.
        (lambda d: d.replace(b'"bits_per_code":6', b'"bits_per_code":7'), "CRC32"),
        (lambda d: _resign(d[:8] + struct.pack("<H", 3) + d[10:]), "version 3 is newer"),
        # A damaged version field (CRC no longer matches) is corruption, not "upgrade codec".
        (lambda d: d[:8] + struct.pack("<H", 3) + d[10:], "corrupt token file .CRC32"),
        (lambda d: d[:8] + struct.pack("<H", 0) + d[10:], "corrupt"),
        (lambda d: d[:10] + struct.pack("<I", 10**8) + d[14:], "corrupt"),
        (lambda d: _rewrite(d, lambda h: h.update(channels="2")), "channels"),
        (lambda d: _rewrite(d, lambda h: h.update(codebook_size=1)), "codebook_size"),
        (lambda d: _rewrite(d, lambda h: h.update(bits_per_code=7)), "bits_per_code"),
        (lambda d: _rewrite(d, lambda h: h.update(num_frames=h["num_frames"] - 1)), "num_frames"),
        (lambda d: _rewrite(d, lambda h: h.update(num_samples=h["num_samples"] - 500)), "num_"),
        (lambda d: _rewrite(d, lambda h: h.pop("fingerprint")), "fingerprint"),
        (lambda d: _rewrite(d, lambda h: h.update(fingerprint="ABC")), "fingerprint must be 64"),
        (lambda d: _rewrite(d, lambda h: h.update(fingerprint=7)), "fingerprint"),
        (lambda d: _rewrite(d, lambda h: h.update(config_hash=7)), "config_hash"),
        (lambda d: _rewrite(d, lambda h: h.update(sample_rate=True)), "sample_rate"),
        (lambda d: _rewrite(d, lambda h: h.update(channels=1)), "truncated|trailing"),
    ],
)
def test_damaged_files_fail_clearly(tmp_path: Path, codes: Codes, damage, message: str) -> None:
    good = write_codes(tmp_path / "good.cdc", codes).read_bytes()
    path = tmp_path / "bad.cdc"
    path.write_bytes(damage(good))
    with pytest.raises(TokenFileError, match=message) as info:
        read_codes(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_codes_outside_the_codebook_are_refused(tmp_path: Path, debug_codec: Codec) -> None:
    # Codebook of 5 entries (3 bits): the value 7 fits the bits but not the codebook.
    fake = Codes(
        codes=torch.full((1, 2, 4), 7), lengths=torch.tensor([4 * 160]), sample_rate=16000,
        hop_length=160, codebook_size=8, model="x",
    )  # fmt: skip
    data = write_codes(tmp_path / "x.cdc", fake).read_bytes()
    (tmp_path / "x.cdc").write_bytes(_rewrite(data, lambda h: h.update(codebook_size=5)))
    with pytest.raises(TokenFileError, match="codebook_size 5"):
        read_codes(tmp_path / "x.cdc")
    with pytest.raises(ValueError, match="out of range"):
        write_codes(tmp_path / "y.cdc", dataclasses.replace(fake, codebook_size=4))


def test_missing_or_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="no such file"):
        read_codes(tmp_path / "missing.cdc")
    with pytest.raises(TokenFileError, match="directory"):
        read_codes(tmp_path)


def _stream_header(codes: Codes) -> StreamHeader:
    h = header_from_codes(codes)
    return StreamHeader(**{f.name: getattr(h, f.name) for f in dataclasses.fields(StreamHeader)})


def test_stream_round_trip_packet_by_packet(codes: Codes) -> None:
    buf = io.BytesIO()
    writer = TokenStreamWriter(buf, _stream_header(codes))
    splits = [0, 1, 4, 37, codes.num_frames]
    for a, b in itertools.pairwise(splits):
        writer.write(codes.codes[..., a:b])
    writer.close(int(codes.lengths[0]), int(codes.original_lengths[0]))
    reader = TokenStreamReader(io.BytesIO(buf.getvalue()), "pipe")
    assert reader.header == _stream_header(codes) and not isinstance(reader.header, FileHeader)
    chunks = list(reader.frames())
    assert [c.shape[-1] for c in chunks] == [1, 3, 33, codes.num_frames - 37]
    assert torch.equal(torch.cat(chunks, -1), codes.codes)
    assert reader.end.num_samples == int(codes.lengths[0]) and reader.end.original_num_samples == 44223


def test_stream_reader_reads_exactly_what_is_needed(codes: Codes) -> None:
    """A reader on a pipe gets each packet before the writer sends the next."""

    class OneByteAtATime(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.pos = data, 0

        def read(self, n: int = -1) -> bytes:
            out = self.data[self.pos : self.pos + 1]
            self.pos += len(out)
            return out

    buf = io.BytesIO()
    writer = TokenStreamWriter(buf, _stream_header(codes))
    writer.write(codes.codes[..., :2])
    first_packet_end = buf.tell()
    reader = TokenStreamReader(OneByteAtATime(buf.getvalue()))
    frames = reader.frames()
    assert torch.equal(next(frames), codes.codes[..., :2])
    assert reader.inp.pos == first_packet_end


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda d, h: b"", "empty input"),
        (lambda d, h: d[:h], "truncated"),
        (lambda d, h: d[:-5], "truncated"),
        (lambda d, h: d[: h + 10], "truncated"),
        (lambda d, h: d[: h + 7] + bytes([d[h + 7] ^ 4]) + d[h + 8 :], "CRC32"),
        (lambda d, h: d[:h] + b"X" + d[h + 1 :], "unknown packet"),
        (lambda d, h: d[:20] + bytes([d[20] ^ 1]) + d[21:], "CRC32|header"),
        (lambda d, h: MAGIC + d[8:], "token file, expected a token stream"),
        (lambda d, h: b"OggS" + d[4:], "Ogg"),
        (lambda d, h: _resign_stream(d[:8] + struct.pack("<H", 9) + d[10:], h), "version 9"),
        (lambda d, h: d[:8] + struct.pack("<H", 9) + d[10:], "corrupt stream header"),
        # One stream is one recording: anything after the end packet is refused, not dropped.
        (lambda d, h: d + d, "data after the end packet"),
        (lambda d, h: d + b"\0", "data after the end packet"),
        (lambda d, h: d[:h] + b"F" + struct.pack("<I", 0) + d[h + 5 :], "packet of 0 frames"),
    ],
)
def test_damaged_streams_fail_clearly(codes: Codes, cut, message: str) -> None:
    buf = io.BytesIO()
    writer = TokenStreamWriter(buf, _stream_header(codes))
    header_end = buf.tell()
    writer.write(codes.codes[..., :10])
    writer.close(int(codes.lengths[0]), int(codes.original_lengths[0]))
    data = cut(buf.getvalue(), header_end)
    with pytest.raises(TokenFileError, match=message) as info:
        list(TokenStreamReader(io.BytesIO(data), "<stdin>").frames())
    assert "<stdin>" in str(info.value)


def _header_doc(**changes) -> dict:
    doc = {
        "model": "m", "fingerprint": "", "sample_rate": 16000, "hop_length": 160, "channels": 1,
        "num_codebooks": 2, "codebook_size": 64, "bits_per_code": 6, "original_sample_rate": 16000,
        "num_frames": 1, "num_samples": 1, "original_num_samples": 1,
    }  # fmt: skip
    doc.update(changes)
    if "codebook_size" in changes:
        doc["bits_per_code"] = bits_per_code(changes["codebook_size"])
    return doc


@pytest.mark.parametrize(
    ("changes", "problem"),
    [  # each limit is accepted, one past it is refused with the field and value named
        ({"codebook_size": 2}, None),
        ({"codebook_size": 2**32}, None),
        ({"codebook_size": 1}, "codebook_size must be in 2..2**32, got 1"),
        ({"codebook_size": 2**32 + 1}, "codebook_size must be in 2..2**32"),
        ({"sample_rate": 10_000_000, "original_sample_rate": 10_000_000, "channels": 4096}, None),
        ({"sample_rate": 10_000_001}, "sample rate or channel count out of range"),
        ({"original_sample_rate": 10_000_001, "original_num_samples": 626}, "sample rate or channel count"),
        ({"channels": 4097}, "sample rate or channel count out of range"),
        ({"hop_length": 0}, "hop_length must be >= 1, got 0"),
        ({"num_codebooks": 0}, "num_codebooks must be >= 1, got 0"),
        (
            {"num_samples": 0, "original_num_samples": 0, "num_frames": 0},
            "num_samples and original_num_samples",
        ),
        ({"original_num_samples": 0}, "num_samples and original_num_samples must be >= 1"),
        ({"bits_per_code": 7}, "bits_per_code 7 does not match codebook_size 64"),
    ],
)
def test_header_limits(changes: dict, problem: str | None) -> None:
    doc = _header_doc(**changes)
    if problem is None:
        assert parse_header(doc, FileHeader, "h").codebook_size == doc["codebook_size"]
    else:
        with pytest.raises(TokenFileError, match=re.escape(problem)):
            parse_header(doc, FileHeader, "h")


def test_header_is_sorted_compact_json(tmp_path: Path, codes: Codes) -> None:
    data = write_codes(tmp_path / "x.cdc", codes).read_bytes()
    n = struct.unpack_from("<I", data, 10)[0]
    text = data[14 : 14 + n]
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":")).encode()


def test_writer_refuses_a_code_equal_to_the_codebook_size(tmp_path: Path) -> None:
    fake = Codes(
        codes=torch.tensor([[[0], [4]]]), lengths=torch.tensor([160]), sample_rate=16000,
        hop_length=160, codebook_size=4,
    )  # fmt: skip
    with pytest.raises(ValueError, match=re.escape("codes out of range 0..3")):
        write_codes(tmp_path / "x.cdc", fake)
    assert not (tmp_path / "x.cdc").exists()
