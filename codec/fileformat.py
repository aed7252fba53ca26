"""Deprecated: the token containers are one package now, :mod:`codec.tokenfile`.

Every public name of this module still imports from here, with a :class:`DeprecationWarning`
naming its new place.
"""

from __future__ import annotations

from codec.lazy import moved

__getattr__ = moved(
    __name__,
    {
        "EXTENSION": ("codec.tokenfile.header", "EXTENSION"),
        "STREAM_EXTENSION": ("codec.tokenfile.header", "STREAM_EXTENSION"),
        "MAGIC": ("codec.tokenfile.header", "MAGIC"),
        "STREAM_MAGIC": ("codec.tokenfile.header", "STREAM_MAGIC"),
        "VERSION": ("codec.tokenfile.header", "VERSION"),
        "MAX_HEADER_BYTES": ("codec.tokenfile.header", "MAX_HEADER_BYTES"),
        "MAX_PACKET_FRAMES": ("codec.tokenfile.header", "MAX_PACKET_FRAMES"),
        "MODEL_NAME": ("codec.tokenfile.header", "MODEL_NAME"),
        "TokenFileError": ("codec.tokenfile.header", "TokenFileError"),
        "StreamHeader": ("codec.tokenfile.header", "StreamHeader"),
        "FileHeader": ("codec.tokenfile.header", "FileHeader"),
        "StreamEnd": ("codec.tokenfile.header", "StreamEnd"),
        "parse_header": ("codec.tokenfile.header", "parse_header"),
        "header_from_codes": ("codec.tokenfile.file", "header_from_codes"),
        "codes_from_header": ("codec.tokenfile.file", "codes_from_header"),
        "write_codes": ("codec.tokenfile.file", "write_codes"),
        "token_file_bytes": ("codec.tokenfile.file", "token_file_bytes"),
        "read_header": ("codec.tokenfile.file", "read_header"),
        "read_codes": ("codec.tokenfile.file", "read_codes"),
    },
)
