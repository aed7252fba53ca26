"""Token files (``.cdc``): one item's codes, written atomically and read back with every check.

The byte layout is in :mod:`codec.tokenfile`; the header and its checks in
:mod:`codec.tokenfile.header`.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch

from codec.atomic import Output
from codec.errors import CodesError
from codec.tokenfile.bitpack import decode_frames, encode_frames
from codec.tokenfile.header import (
    MAGIC,
    MODEL_NAME,
    PREFIX,
    U32,
    FileHeader,
    TokenFileError,
    check_crc,
    check_magic,
    check_prefix,
    check_range,
    parse_json,
    prefix_bytes,
)
from codec.tokens.codes import Codes


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
    blob = prefix_bytes(MAGIC, header) + encode_frames(frames, header.bits_per_code)
    return blob + U32.pack(zlib.crc32(blob))


def read_header(path: str | Path) -> FileHeader:
    """The validated header of a token file (the whole file is checked, CRC included)."""
    return _read(Path(path))[0]


def read_codes(path: str | Path) -> Codes:
    """Read and validate a token file. Returns :class:`Codes` with ``codes [C, K, F]``.

    Raises :class:`TokenFileError` naming the file and the problem.
    """
    return codes_from_header(*_read(Path(path)))


def _read(path: Path) -> tuple[FileHeader, torch.Tensor]:
    data = _read_bytes(path)
    if len(data) < PREFIX.size:
        raise TokenFileError(f"{path}: truncated token file (header incomplete)")
    version, length = check_prefix(data[: PREFIX.size], MAGIC, path, lambda: check_crc(data, path))
    start = PREFIX.size + length
    if len(data) < start:
        raise TokenFileError(f"{path}: truncated token file (header incomplete)")
    header = parse_json(data[PREFIX.size : start], FileHeader, path, lambda: check_crc(data, path), version)
    expected = start + header.payload_bytes + U32.size
    if len(data) < expected:
        raise TokenFileError(f"{path}: truncated token file ({len(data)} of {expected} bytes)")
    if len(data) > expected:
        raise TokenFileError(f"{path}: corrupt token file ({len(data) - expected} unexpected trailing bytes)")
    check_crc(data, path)
    codes = decode_frames(data[start : start + header.payload_bytes], header, header.num_frames)
    check_range(codes, header, path)
    return header, codes


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            head = f.read(len(MAGIC))
            if not head:
                raise TokenFileError(f"{path}: empty file (not a token file)")
            check_magic(head, MAGIC, path)
            return head + f.read()
    except FileNotFoundError:
        raise TokenFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TokenFileError(f"{path}: is a directory, not a token file") from None
    except OSError as err:
        raise TokenFileError(f"{path}: cannot read ({err.strerror or err})") from None
