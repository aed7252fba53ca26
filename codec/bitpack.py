"""Deprecated: the token containers are one package now, :mod:`codec.tokenfile`.

Every public name of this module still imports from here, with a :class:`DeprecationWarning`
naming its new place.
"""

from __future__ import annotations

from codec.lazy import moved

__getattr__ = moved(
    __name__,
    {
        "bits_per_code": ("codec.tokenfile.bitpack", "bits_per_code"),
        "packed_size": ("codec.tokenfile.bitpack", "packed_size"),
        "pack_codes": ("codec.tokenfile.bitpack", "pack_codes"),
        "unpack_codes": ("codec.tokenfile.bitpack", "unpack_codes"),
        "encode_frames": ("codec.tokenfile.bitpack", "encode_frames"),
        "decode_frames": ("codec.tokenfile.bitpack", "decode_frames"),
    },
)
