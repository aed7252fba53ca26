"""Deprecated: corpus tokenization and the LM datasets are :mod:`codec.tokenize` now.

The package's names (``TokenDataset``, ``IterableTokenDataset``, ``collate_tokens``,
``row_codes``, ``ShardError``, ``TokenizeOptions``, ``TokenizeReport``, ``tokenize``) still
import from here, with a :class:`DeprecationWarning` naming their new place.  ``codec/data``
meant a third thing beside ``train/data.py`` and ``bench/data.py``; the new name says which.
"""

from __future__ import annotations

from codec.lazy import moved

__getattr__ = moved(
    __name__,
    {
        "TokenDataset": ("codec.tokenize", "TokenDataset"),
        "IterableTokenDataset": ("codec.tokenize", "IterableTokenDataset"),
        "ShardError": ("codec.tokenize", "ShardError"),
        "collate_tokens": ("codec.tokenize", "collate_tokens"),
        "row_codes": ("codec.tokenize", "row_codes"),
        "TokenizeOptions": ("codec.tokenize", "TokenizeOptions"),
        "TokenizeReport": ("codec.tokenize", "TokenizeReport"),
        "tokenize": ("codec.tokenize", "tokenize"),
    },
)
