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
use, so ``codec.tokenize.cli`` (imported by ``codec --help``) stays cheap.
"""

from __future__ import annotations

from codec.lazy import exports

_EXPORTS = {
    "TokenDataset": "codec.tokenize.dataset",
    "IterableTokenDataset": "codec.tokenize.dataset",
    "ShardError": "codec.tokenize.shards",
    "collate_tokens": "codec.tokenize.items",
    "row_codes": "codec.tokenize.items",
    "TokenizeOptions": "codec.tokenize.run",
    "TokenizeReport": "codec.tokenize.run",
    "tokenize": "codec.tokenize.run",
}
__getattr__, __dir__ = exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
