"""The token file (``.cdc``) and the token stream (for pipes): containers for :class:`Codes`.

Both are plain bytes with a JSON header; nothing is ever pickled.  All integers are
little-endian; codes are stored frame-major (``[F, C, K]``: every code of frame 0, channel 0
first) at ``bits_per_code = ceil(log2(codebook_size))`` bits each, most significant bit first,
the last byte zero-padded.

Token file (one item, C channels)::

    offset  size  field
    0       8     magic  89 'C' 'D' 'C' 0D 0A 1A 0A
    8       2     format version (u16), currently 2 (1 is still read, see below)
    10      4     header length H (u32)
    14      H     header: UTF-8 JSON object (fields: see FileHeader)
    14+H    P     payload: num_frames * channels * num_codebooks codes, bit-packed
    14+H+P  4     CRC32 (u32) of every byte before it

Token stream (written and read frame by frame, e.g. through a pipe)::

    stream header: magic 89 'C' 'D' 'S' 0D 0A 1A 0A, version (u16), H (u32), H bytes of JSON
                   (fields: see StreamHeader), CRC32 (u32) of the header bytes before it
    packets:       'F' (1 byte), n (u32, 1 <= n <= MAX_PACKET_FRAMES), the n frames bit-packed,
                   CRC32 (u32) of the packet bytes before it
    end:           'E' (1 byte), num_samples (u64, at the model rate), original_num_samples (u64),
                   CRC32 (u32) of the packet bytes before it

Header of a token file (keys sorted, compact; a stream header lacks the three lengths)::

    {"bits_per_code":6,"channels":1,"codebook_size":64,"fingerprint":"9c0e...(64 hex digits)",
     "frame_rate":100.0,"hop_length":160,"model":"debug","num_codebooks":2,"num_frames":300,
     "num_samples":48000,"original_num_samples":132300,"original_sample_rate":44100,
     "sample_rate":16000}

``fingerprint`` is the sha256 of the weights of the model that made the codes (its identity;
"" when unknown), ``model`` only its name.  Version 1 recorded ``config_hash``, a hash of the
model's config, instead: such files are still read (``fingerprint`` "" and ``config_hash``
kept, see :class:`codec.checkpoint.ModelIdentity` for how a decoder checks them).

``num_samples`` is the valid length at the model's ``sample_rate``; decoding trims to it and,
at ``original_sample_rate``, to ``original_num_samples``.  Readers check every field's type and
range and their consistency (``num_frames = ceil(num_samples / hop_length)``, ``bits_per_code``
matches ``codebook_size``, the two lengths agree); unknown keys are ignored, so a version can
gain optional fields.  A change readers must understand bumps the version.  The token
stream's reader and writer are in :mod:`codec.tokenstream`, the bit packing in :mod:`codec.bitpack`.

The magic numbers follow PNG's trick: a non-ASCII first byte and CR LF / ^Z / LF bytes that
text-mode transfers would mangle, so such damage is caught at once.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from codec import config
from codec.atomic import Output
from codec.bitpack import bits_per_code, decode_frames, encode_frames, packed_size
from codec.errors import CodesError, InputError
from codec.tokens import Codes

EXTENSION = ".cdc"
STREAM_EXTENSION = ".cdcs"  # a token stream saved to a file
MAGIC = b"\x89CDC\r\n\x1a\n"
STREAM_MAGIC = b"\x89CDS\r\n\x1a\n"
VERSION = 2
MAX_HEADER_BYTES = 1 << 16
MAX_PACKET_FRAMES = 1 << 16
_PREFIX = struct.Struct("<8sHI")  # magic, version, header length
_U32 = struct.Struct("<I")
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


def header_from_codes(codes: Codes) -> FileHeader:
    """The file header of a one-item :class:`Codes`."""
    if codes.batch_size != 1:
        raise CodesError(
            f"a token file holds one item; got a batch of {codes.batch_size} (use codes.item(i))"
        )
    if not MODEL_NAME.fullmatch(codes.model):
        raise CodesError(
            f"the model name {codes.model!r} is not a plain name (a path cannot go in a token file)"
        )
    n = int(codes.lengths[0])
    orig_sr = codes.original_sample_rate or codes.sample_rate
    orig_n = n if codes.original_lengths is None else int(codes.original_lengths[0])
    return FileHeader(
        model=codes.model,
        fingerprint=codes.fingerprint,
        sample_rate=codes.sample_rate,
        hop_length=codes.hop_length,
        channels=codes.channels,
        num_codebooks=codes.num_codebooks,
        codebook_size=codes.codebook_size,
        original_sample_rate=orig_sr,
        config_hash=codes.config_hash,
        num_frames=int(codes.frame_lengths[0]),
        num_samples=n,
        original_num_samples=orig_n,
    )


def codes_from_header(header: FileHeader, codes: torch.Tensor) -> Codes:
    """The one-item :class:`Codes` of ``codes [C, K, F]`` described by ``header``."""
    return Codes(
        codes=codes,
        lengths=torch.tensor([header.num_samples]),
        sample_rate=header.sample_rate,
        hop_length=header.hop_length,
        codebook_size=header.codebook_size,
        channels=header.channels,
        original_sample_rate=header.original_sample_rate,
        original_lengths=torch.tensor([header.original_num_samples]),
        model=header.model,
        fingerprint=header.fingerprint,
        config_hash=header.config_hash,
    )


def write_codes(path: str | Path, codes: Codes, replace: bool = True) -> Path:
    """Write one item (all its channels) as a token file, atomically (see :class:`codec.atomic.Output`).

    Args:
        path: destination (``.cdc`` by convention); missing folders are created.
        codes: a :class:`Codes` with batch size 1, ``codes [C, K, F]``.
        replace: replace an existing file (otherwise that is an error).
    Returns: the path written.
    """
    blob = token_file_bytes(codes)
    with Output(path, replace=replace) as out:
        out.tmp.write_bytes(blob)
        return out.commit()


def token_file_bytes(codes: Codes) -> bytes:
    """The bytes of a token file holding one item (see :func:`write_codes`)."""
    header = header_from_codes(codes)
    frames = codes.codes[:, :, : header.num_frames]
    if frames.numel() and (int(frames.min()) < 0 or int(frames.max()) >= header.codebook_size):
        raise CodesError(f"codes out of range 0..{header.codebook_size - 1}")
    blob = _prefix(MAGIC, header) + encode_frames(frames, header.bits_per_code)
    return blob + _U32.pack(zlib.crc32(blob))


def read_header(path: str | Path) -> FileHeader:
    """The validated header of a token file (the whole file is checked, CRC included)."""
    return _read(Path(path))[0]


def read_codes(path: str | Path) -> Codes:
    """Read and validate a token file. Returns :class:`Codes` with ``codes [C, K, F]``.

    Raises :class:`TokenFileError` naming the file and the problem.
    """
    return codes_from_header(*_read(Path(path)))


def _prefix(magic: bytes, header: StreamHeader) -> bytes:
    text = json.dumps(header.to_json(), sort_keys=True, separators=(",", ":")).encode()
    return _PREFIX.pack(magic, VERSION, len(text)) + text


def _read(path: Path) -> tuple[FileHeader, torch.Tensor]:
    data = _read_bytes(path)
    if len(data) < _PREFIX.size:
        raise TokenFileError(f"{path}: truncated token file (header incomplete)")
    version, length = _check_prefix(data[: _PREFIX.size], MAGIC, path, lambda: _check_crc(data, path))
    start = _PREFIX.size + length
    if len(data) < start:
        raise TokenFileError(f"{path}: truncated token file (header incomplete)")
    header = _parse_json(
        data[_PREFIX.size : start], FileHeader, path, lambda: _check_crc(data, path), version
    )
    expected = start + header.payload_bytes + _U32.size
    if len(data) < expected:
        raise TokenFileError(f"{path}: truncated token file ({len(data)} of {expected} bytes)")
    if len(data) > expected:
        raise TokenFileError(f"{path}: corrupt token file ({len(data) - expected} unexpected trailing bytes)")
    _check_crc(data, path)
    codes = decode_frames(data[start : start + header.payload_bytes], header, header.num_frames)
    _check_range(codes, header, path)
    return header, codes


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            head = f.read(len(MAGIC))
            if not head:
                raise TokenFileError(f"{path}: empty file (not a token file)")
            _check_magic(head, MAGIC, path)
            return head + f.read()
    except FileNotFoundError:
        raise TokenFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TokenFileError(f"{path}: is a directory, not a token file") from None
    except OSError as err:
        raise TokenFileError(f"{path}: cannot read ({err.strerror or err})") from None


def _check_magic(head: bytes, magic: bytes, name: object) -> None:
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


def _check_prefix(prefix: bytes, magic: bytes, name: object, verify: Callable[[], None]) -> tuple[int, int]:
    """Check magic, version and header length; returns the version and the header length.

    ``verify`` (the CRC check) runs before a version is called too new, so a damaged version
    field reads as corruption rather than as "upgrade codec".
    """
    _check_magic(prefix[: len(magic)], magic, name)
    _, version, length = _PREFIX.unpack(prefix)
    if version > VERSION:
        verify()
        raise TokenFileError(
            f"{name}: format version {version} is newer than this library reads (1..{VERSION}); upgrade codec"
        )
    if version < 1 or length > MAX_HEADER_BYTES:
        raise TokenFileError(f"{name}: corrupt (format version {version}, header length {length})")
    return version, length


def _parse_json(
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


def _check_crc(data: bytes, name: object) -> None:
    if len(data) < _U32.size or zlib.crc32(data[:-4]) != _U32.unpack_from(data, len(data) - 4)[0]:
        raise TokenFileError(f"{name}: corrupt token file (CRC32 mismatch)")


def _check_range(codes: torch.Tensor, header: StreamHeader, name: object) -> None:
    if codes.numel() and int(codes.max()) >= header.codebook_size:
        raise TokenFileError(f"{name}: corrupt (a code is >= codebook_size {header.codebook_size})")
