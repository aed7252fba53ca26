"""The token containers' shared parts: the header dataclasses, the constants of the byte
layout, and the checks every reader runs (magic, version, header fields, CRC, code range).

The layout itself is in :mod:`codec.tokenfile`; :mod:`codec.tokenfile.file` writes and reads
whole token files, :mod:`codec.tokenfile.stream` token streams packet by packet.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from codec import config
from codec.errors import InputError
from codec.tokenfile.bitpack import bits_per_code, packed_size

EXTENSION = ".cdc"
STREAM_EXTENSION = ".cdcs"  # a token stream saved to a file
MAGIC = b"\x89CDC\r\n\x1a\n"
STREAM_MAGIC = b"\x89CDS\r\n\x1a\n"
VERSION = 2
MAX_HEADER_BYTES = 1 << 16
MAX_PACKET_FRAMES = 1 << 16
PREFIX = struct.Struct("<8sHI")  # magic, version, header length
U32 = struct.Struct("<I")
_FINGERPRINT = re.compile("[0-9a-f]{64}")

# The header's model: a plain model name (codec.config.MODEL_NAME; never a path), or "": unknown.
MODEL_NAME = re.compile(f"(?:{config.MODEL_NAME.pattern})?")

# Leading bytes of common files, so a wrong input is named rather than called "corrupt".
_FOREIGN = {b"RIFF": "a WAV/RIFF file", b"fLaC": "a FLAC file", b"OggS": "an Ogg file", b"ID3": "an MP3 file"}


class TokenFileError(InputError):
    """A token file or stream that cannot be read: foreign, empty, truncated, corrupt, too new."""


@dataclass(frozen=True)
class StreamHeader:
    """What a reader needs before the first frame.

    Attributes:
        model: name of the model that made the codes (a name such as ``speech_16k``, never a
            path: see :data:`MODEL_NAME`).
        fingerprint: that model's weights fingerprint (a decoder refuses codes of other weights).
        sample_rate: model sample rate (Hz).
        hop_length: samples per frame.
        channels: C, channels coded separately.
        num_codebooks: K, codes per channel per frame.
        codebook_size: entries per codebook (codes lie in ``0 .. codebook_size - 1``).
        original_sample_rate: rate of the audio that was encoded (decode restores it).
        config_hash: the identity a version-1 file recorded instead of ``fingerprint`` ("" if none).
    """

    model: str
    fingerprint: str
    sample_rate: int
    hop_length: int
    channels: int
    num_codebooks: int
    codebook_size: int
    original_sample_rate: int
    config_hash: str = ""

    @property
    def bits_per_code(self) -> int:
        return bits_per_code(self.codebook_size)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def codes_per_frame(self) -> int:
        return self.channels * self.num_codebooks

    def to_json(self) -> dict[str, Any]:
        doc = {**asdict(self), "frame_rate": self.frame_rate, "bits_per_code": self.bits_per_code}
        if not self.config_hash:
            del doc["config_hash"]
        return doc


@dataclass(frozen=True)
class FileHeader(StreamHeader):
    """:class:`StreamHeader` plus the lengths of a complete file.

    Attributes:
        num_frames: F, ``ceil(num_samples / hop_length)``.
        num_samples: valid samples at ``sample_rate``.
        original_num_samples: valid samples at ``original_sample_rate`` (decode restores it).
    """

    num_frames: int = 0
    num_samples: int = 0
    original_num_samples: int = 0

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.original_num_samples / self.original_sample_rate

    @property
    def payload_bytes(self) -> int:
        return packed_size(self.num_frames * self.codes_per_frame, self.bits_per_code)


@dataclass(frozen=True)
class StreamEnd:
    """The end packet of a token stream: true lengths, known only once the input has ended."""

    num_samples: int
    original_num_samples: int


def prefix_bytes(magic: bytes, header: StreamHeader) -> bytes:
    text = json.dumps(header.to_json(), sort_keys=True, separators=(",", ":")).encode()
    return PREFIX.pack(magic, VERSION, len(text)) + text


def check_magic(head: bytes, magic: bytes, name: object) -> None:
    if head == magic:
        return
    want = "token file" if magic == MAGIC else "token stream"
    if head == (STREAM_MAGIC if magic == MAGIC else MAGIC):
        other = "token stream" if magic == MAGIC else "token file"
        raise TokenFileError(f"{name}: this is a codec {other}, expected a {want}")
    if magic.startswith(head):
        raise TokenFileError(f"{name}: truncated {want} (only {len(head)} bytes)")
    what = next((v for k, v in _FOREIGN.items() if head.startswith(k)), None)
    found = f"it looks like {what}" if what else "unknown leading bytes"
    raise TokenFileError(f"{name}: not a codec {want} ({found})")


def check_prefix(prefix: bytes, magic: bytes, name: object, verify: Callable[[], None]) -> tuple[int, int]:
    """Check magic, version and header length; returns the version and the header length.

    ``verify`` (the CRC check) runs before a version is called too new, so a damaged version
    field reads as corruption rather than as "upgrade codec".
    """
    check_magic(prefix[: len(magic)], magic, name)
    _, version, length = PREFIX.unpack(prefix)
    if version > VERSION:
        verify()
        raise TokenFileError(
            f"{name}: format version {version} is newer than this library reads (1..{VERSION}); upgrade codec"
        )
    if version < 1 or length > MAX_HEADER_BYTES:
        raise TokenFileError(f"{name}: corrupt (format version {version}, header length {length})")
    return version, length


def parse_json(
    text: bytes, cls: type[StreamHeader], name: object, verify: Callable[[], None], version: int
) -> Any:
    """Parse and validate a JSON header; ``verify`` runs first when it is invalid, so damage
    caught by a checksum is reported as corruption rather than as a bad field."""
    try:
        doc = json.loads(text.decode("utf-8"))
        return parse_header(doc, cls, name, version)
    except (UnicodeDecodeError, json.JSONDecodeError):
        verify()
        raise TokenFileError(f"{name}: corrupt header (not valid JSON)") from None
    except TokenFileError:
        verify()
        raise


def parse_header(doc: Any, cls: type[StreamHeader], name: object, version: int = VERSION) -> Any:
    """Validate a header JSON object of format ``version`` field by field and build ``cls`` from it."""
    if not isinstance(doc, dict):
        raise TokenFileError(f"{name}: invalid header (not a JSON object)")
    if version == 1:
        # Version 1 identified the model by config_hash (required) and had no fingerprint.
        if not isinstance(doc.get("config_hash"), str):
            raise TokenFileError(f"{name}: invalid header field 'config_hash': {doc.get('config_hash')!r}")
        doc = {**doc, "fingerprint": ""}
    doc = {"config_hash": "", **doc}
    values = {}
    for f in fields(cls):
        value = doc.get(f.name)
        want = str if f.name in ("model", "fingerprint", "config_hash") else int
        if value is None or isinstance(value, bool) or not isinstance(value, want):
            raise TokenFileError(f"{name}: invalid header field {f.name!r}: {value!r}")
        if f.name == "model" and not MODEL_NAME.fullmatch(value):
            raise TokenFileError(f"{name}: invalid header field 'model': {value!r} is not a model name")
        values[f.name] = value
    header = cls(**values)
    problem = _header_problem(header, doc)
    if problem:
        raise TokenFileError(f"{name}: invalid header: {problem}")
    return header


def _header_problem(h: StreamHeader, doc: dict[str, Any]) -> str | None:
    for key in ("sample_rate", "hop_length", "channels", "num_codebooks", "original_sample_rate"):
        if getattr(h, key) < 1:
            return f"{key} must be >= 1, got {getattr(h, key)}"
    if not 2 <= h.codebook_size <= 1 << 32:
        return f"codebook_size must be in 2..2**32, got {h.codebook_size}"
    if h.sample_rate > 10_000_000 or h.original_sample_rate > 10_000_000 or h.channels > 4096:
        return "sample rate or channel count out of range"
    if h.fingerprint and not _FINGERPRINT.fullmatch(h.fingerprint):
        return f"fingerprint must be 64 lowercase hex digits, got {h.fingerprint!r}"
    if doc.get("bits_per_code") != h.bits_per_code:
        return f"bits_per_code {doc.get('bits_per_code')!r} does not match codebook_size {h.codebook_size}"
    if isinstance(h, FileHeader):
        if h.num_samples < 1 or h.original_num_samples < 1:
            return "num_samples and original_num_samples must be >= 1"
        if h.num_frames != -(-h.num_samples // h.hop_length):
            return f"num_frames {h.num_frames} does not fit num_samples {h.num_samples} at hop {h.hop_length}"
        # The model-rate length is the original length resampled (rounded up), as encode makes it.
        if -(-h.original_num_samples * h.sample_rate // h.original_sample_rate) != h.num_samples:
            return f"original_num_samples {h.original_num_samples} does not fit num_samples {h.num_samples}"
    return None


def check_crc(data: bytes, name: object) -> None:
    if len(data) < U32.size or zlib.crc32(data[:-4]) != U32.unpack_from(data, len(data) - 4)[0]:
        raise TokenFileError(f"{name}: corrupt token file (CRC32 mismatch)")


def check_range(codes: torch.Tensor, header: StreamHeader, name: object) -> None:
    if codes.numel() and int(codes.max()) >= header.codebook_size:
        raise TokenFileError(f"{name}: corrupt (a code is >= codebook_size {header.codebook_size})")
