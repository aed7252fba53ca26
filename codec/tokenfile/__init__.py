"""Token files (``.cdc``) and token streams (for pipes): the containers of :class:`Codes`.

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
gain optional fields.  A change readers must understand bumps the version.

The magic numbers follow PNG's trick: a non-ASCII first byte and CR LF / ^Z / LF bytes that
text-mode transfers would mangle, so such damage is caught at once.

Modules: :mod:`~codec.tokenfile.header` (the header, the layout's constants, the checks every
reader runs), :mod:`~codec.tokenfile.file` (token files), :mod:`~codec.tokenfile.stream`
(token streams, packet by packet), :mod:`~codec.tokenfile.bitpack` (the payload's bit
packing).  The names below are imported from them on first use (:mod:`codec.lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codec.lazy import exports

if TYPE_CHECKING:
    from codec.tokenfile.bitpack import (
        bits_per_code,
        decode_frames,
        encode_frames,
        pack_codes,
        packed_size,
        unpack_codes,
    )
    from codec.tokenfile.file import (
        codes_from_header,
        header_from_codes,
        read_codes,
        read_header,
        token_file_bytes,
        write_codes,
    )
    from codec.tokenfile.header import (
        EXTENSION,
        MAGIC,
        MAX_HEADER_BYTES,
        MAX_PACKET_FRAMES,
        MODEL_NAME,
        STREAM_EXTENSION,
        STREAM_MAGIC,
        VERSION,
        FileHeader,
        StreamEnd,
        StreamHeader,
        TokenFileError,
        parse_header,
    )
    from codec.tokenfile.stream import TokenStreamReader, TokenStreamWriter

__all__ = [
    "EXTENSION",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_PACKET_FRAMES",
    "MODEL_NAME",
    "STREAM_EXTENSION",
    "STREAM_MAGIC",
    "VERSION",
    "FileHeader",
    "StreamEnd",
    "StreamHeader",
    "TokenFileError",
    "TokenStreamReader",
    "TokenStreamWriter",
    "bits_per_code",
    "codes_from_header",
    "decode_frames",
    "encode_frames",
    "header_from_codes",
    "pack_codes",
    "packed_size",
    "parse_header",
    "read_codes",
    "read_header",
    "token_file_bytes",
    "unpack_codes",
    "write_codes",
]
_MODULE = {
    "EXTENSION": "header",
    "STREAM_EXTENSION": "header",
    "MAGIC": "header",
    "STREAM_MAGIC": "header",
    "VERSION": "header",
    "MAX_HEADER_BYTES": "header",
    "MAX_PACKET_FRAMES": "header",
    "MODEL_NAME": "header",
    "TokenFileError": "header",
    "StreamHeader": "header",
    "FileHeader": "header",
    "StreamEnd": "header",
    "parse_header": "header",
    "header_from_codes": "file",
    "codes_from_header": "file",
    "write_codes": "file",
    "token_file_bytes": "file",
    "read_header": "file",
    "read_codes": "file",
    "TokenStreamReader": "stream",
    "TokenStreamWriter": "stream",
    "bits_per_code": "bitpack",
    "packed_size": "bitpack",
    "pack_codes": "bitpack",
    "unpack_codes": "bitpack",
    "encode_frames": "bitpack",
    "decode_frames": "bitpack",
}
__getattr__, __dir__ = exports(__name__, {n: f"{__name__}.{m}" for n, m in _MODULE.items()})
