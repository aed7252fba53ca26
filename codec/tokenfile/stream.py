"""The token stream (for pipes): a header, then packets of frames, then an end packet.

The layout is in :mod:`codec.tokenfile`'s docstring, beside the token file's; this module
writes and reads it packet by packet, so a stream can be decoded while it is still being
made.  Readers check every CRC, refuse a stream cut before its end packet and anything after
it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import torch

from codec.tokenfile.bitpack import decode_frames, encode_frames, packed_size
from codec.tokenfile.header import (
    MAGIC,
    MAX_HEADER_BYTES,
    MAX_PACKET_FRAMES,
    PREFIX,
    STREAM_MAGIC,
    U32,
    StreamEnd,
    StreamHeader,
    TokenFileError,
    check_magic,
    check_prefix,
    check_range,
    parse_json,
    prefix_bytes,
)

_END = struct.Struct("<QQ")


class TokenStreamWriter:
    """Writes a token stream: the header at once, then one packet per :meth:`write` call.

    Args:
        out: a binary file object (e.g. ``sys.stdout.buffer``); flushed after every packet so a
            reader downstream gets each packet as soon as it is made.
        header: the stream header.
    """

    def __init__(self, out: BinaryIO, header: StreamHeader) -> None:
        self.out, self.header = out, header
        blob = prefix_bytes(STREAM_MAGIC, header)
        self._send(blob + U32.pack(zlib.crc32(blob)))

    def write(self, codes: torch.Tensor) -> None:
        """Args: codes ``[C, K, f]`` (``f`` may be 0: nothing is written)."""
        for start in range(0, codes.shape[-1], MAX_PACKET_FRAMES):
            chunk = codes[..., start : start + MAX_PACKET_FRAMES]
            blob = b"F" + U32.pack(chunk.shape[-1]) + encode_frames(chunk, self.header.bits_per_code)
            self._send(blob + U32.pack(zlib.crc32(blob)))

    def close(self, num_samples: int, original_num_samples: int) -> None:
        """Write the end packet with the true lengths (model rate and original rate)."""
        blob = b"E" + _END.pack(num_samples, original_num_samples)
        self._send(blob + U32.pack(zlib.crc32(blob)))

    def _send(self, blob: bytes) -> None:
        self.out.write(blob)
        self.out.flush()


class TokenStreamReader:
    """Reads a token stream packet by packet (blocking reads of exactly the bytes needed).

    Args:
        inp: a binary file object (e.g. ``sys.stdin.buffer``).
        name: how errors name the input.

    Iterate over :meth:`frames` for codes ``[C, K, f]``; afterwards :attr:`end` holds the
    :class:`StreamEnd`.  A stream that stops without its end packet, or goes on after it
    (trailing bytes, a second stream appended), is a :class:`TokenFileError`.
    """

    def __init__(self, inp: BinaryIO, name: str = "<stdin>") -> None:
        self.inp, self.name = inp, name
        head = self._read(len(MAGIC), allow_eof=True)
        if not head:
            raise TokenFileError(f"{name}: empty input (no token stream)")
        check_magic(head, STREAM_MAGIC, name)
        prefix = head + self._read(PREFIX.size - len(MAGIC))
        length = PREFIX.unpack(prefix)[2]
        if length > MAX_HEADER_BYTES:
            raise TokenFileError(f"{name}: corrupt stream header (header length {length})")
        text = self._read(length)
        crc = self._read(U32.size)

        def verify() -> None:
            if zlib.crc32(prefix + text) != U32.unpack(crc)[0]:
                raise TokenFileError(f"{name}: corrupt stream header (CRC32 mismatch)")

        verify()  # first, so a damaged version field reads as corruption, not as "too new"
        version = check_prefix(prefix, STREAM_MAGIC, name, verify)[0]
        self.header: StreamHeader = parse_json(text, StreamHeader, name, verify, version)
        self.end: StreamEnd | None = None

    def frames(self) -> Iterator[torch.Tensor]:
        """Yields codes ``[C, K, f]`` packet by packet until the end packet."""
        while self.end is None:
            kind = self._read(1)
            if kind == b"F":
                count = self._read(U32.size)
                n = U32.unpack(count)[0]
                if not 1 <= n <= MAX_PACKET_FRAMES:
                    raise TokenFileError(f"{self.name}: corrupt stream (packet of {n} frames)")
                payload = self._read(packed_size(n * self.header.codes_per_frame, self.header.bits_per_code))
                self._check(kind + count + payload)
                codes = decode_frames(payload, self.header, n)
                check_range(codes, self.header, self.name)
                yield codes
            elif kind == b"E":
                body = self._read(_END.size)
                self._check(kind + body)
                self.end = StreamEnd(*_END.unpack(body))
                if self.inp.read(1):
                    raise TokenFileError(
                        f"{self.name}: data after the end packet (a stream holds one recording; "
                        "concatenated streams or trailing bytes are refused)"
                    )
            else:
                raise TokenFileError(f"{self.name}: corrupt stream (unknown packet type {kind!r})")

    def _check(self, blob: bytes) -> None:
        if zlib.crc32(blob) != U32.unpack(self._read(U32.size))[0]:
            raise TokenFileError(f"{self.name}: corrupt stream (packet CRC32 mismatch)")

    def _read(self, n: int, allow_eof: bool = False) -> bytes:
        data = b""
        while len(data) < n:
            part = self.inp.read(n - len(data))
            if not part:
                if allow_eof and not data:
                    return b""
                raise TokenFileError(f"{self.name}: truncated token stream (ended without its end packet)")
            data += part
        return data
