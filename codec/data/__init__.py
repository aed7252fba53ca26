"""Corpus tokenization and LM datasets (the ``data`` extra: pyarrow; Lightning for several processes).

==================  ==========================================================================
module              what
==================  ==========================================================================
``inputs``          folders, files, CSV/JSONL manifests -> items (id, path, metadata)
``plan``            headers read once; items sorted by duration into shards; ``plan.parquet``
``encode``          one shard: exact length-bucketed batches through ``Codec.encode``
``shards``          Parquet shards, ``errors.csv``, ``index.json`` (atomic writes)
``options``         ``TokenizeOptions`` and their checks (no PyTorch import)
``launch``          ``--devices N``: the node's other processes, started before the imports
``distributed``     one process, or a DDP group (torch.distributed; Lightning Fabric under SLURM)
``run``             the run: plan, resume, encode this rank's shards, index
``dataset``         :class:`TokenDataset` / :class:`IterableTokenDataset` over an output
``items``           rows -> items (crops with their start, padding); :func:`collate_tokens`
``cli``             ``codec tokenize``
==================  ==========================================================================

Nothing in the inference core imports this package.  The names below are imported on first
use, so ``codec.data.cli`` (imported by ``codec --help``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TokenDataset": "codec.data.dataset",
    "IterableTokenDataset": "codec.data.dataset",
    "ShardError": "codec.data.shards",
    "collate_tokens": "codec.data.items",
    "row_codes": "codec.data.items",
    "TokenizeOptions": "codec.data.run",
    "TokenizeReport": "codec.data.run",
    "tokenize": "codec.data.run",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'codec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
