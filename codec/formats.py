"""File name suffixes the commands recognise, in one place (and free of heavy imports, so the
command line can sort its inputs before PyTorch loads)."""

from __future__ import annotations

# What libsndfile reads and `codec encode DIR` / `codec tokenize DIR` pick up in a folder; raw
# headerless files are left out (they need a rate and a sample format given).
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                            ".au", ".w64", ".rf64", ".caf"})  # fmt: skip
# Manifests: a table of paths (a `path` column) with optional ids and metadata.
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
