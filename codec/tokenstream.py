"""Deprecated: the token containers are one package now, :mod:`codec.tokenfile`.

Every public name of this module still imports from here, with a :class:`DeprecationWarning`
naming its new place.
"""

from __future__ import annotations

from codec.lazy import moved

__getattr__ = moved(
    __name__,
    {
        "TokenStreamReader": ("codec.tokenfile.stream", "TokenStreamReader"),
        "TokenStreamWriter": ("codec.tokenfile.stream", "TokenStreamWriter"),
    },
)
