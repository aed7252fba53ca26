"""SpeechTokenizer (the ``speechtokenizer`` package): 16 kHz, 50 Hz, 8 codebooks of 1024.

Its first codebook is distilled from HuBERT (content), the other seven hold what is left (the
residual VQ's leading levels are a valid lower bitrate).  The package loads a model from a
``config.json`` and a checkpoint (``.pt``): ``speechtokenizer:fnlp/SpeechTokenizer`` takes
``speechtokenizer_hubert_avg/config.json`` and ``SpeechTokenizer.pt`` of that hub repository;
``speechtokenizer:FOLDER`` takes a folder holding a ``config.json`` and one ``.pt`` file (or
that same sub-folder).  Its encoder has a bidirectional LSTM, so an item's codes depend on
anything after it in a padded batch (``batch_invariant`` is False), and it cannot stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from codec.backends import BackendError
from codec.backends.base import WrappedBackend
from codec.backends.hub import fetch, model_name, need

SUBFOLDER = "speechtokenizer_hubert_avg"  # where the published repository keeps the model
CHECKPOINT = "SpeechTokenizer.pt"


def _files_in(folder: Path) -> tuple[Path, Path]:
    for where in (folder, folder / SUBFOLDER):
        config, weights = where / "config.json", sorted(where.glob("*.pt"))
        if config.is_file() and len(weights) == 1:
            return config, weights[0]
    raise BackendError(f"speechtokenizer:{folder}: expected a config.json and one .pt checkpoint in it")


def _build(ref: str, **hub: Any) -> Any:
    """The model from a folder, or from hub id ``ref`` (``hub``: ``hf_hub_download`` options)."""
    from speechtokenizer import SpeechTokenizer

    if Path(ref).is_dir():
        config, weights = _files_in(Path(ref))
    else:
        from huggingface_hub import hf_hub_download

        config = Path(hf_hub_download(ref, f"{SUBFOLDER}/config.json", **hub))
        weights = Path(hf_hub_download(ref, f"{SUBFOLDER}/{CHECKPOINT}", **hub))
    return SpeechTokenizer.load_from_checkpoint(str(config), str(weights))


def load(kind: str, ref: str) -> SpeechTokenizerBackend:
    need("speechtokenizer", kind, "speechtokenizer beartype")  # 1.0.1 imports beartype undeclared
    import importlib.metadata

    backend = SpeechTokenizerBackend(fetch(kind, ref, _build), model_name(kind, ref), ref)
    backend.versions = f"speechtokenizer={importlib.metadata.version('speechtokenizer')}"
    return backend


class SpeechTokenizerBackend(WrappedBackend):
    """A SpeechTokenizer model behind :class:`Backend`."""

    kind = "speechtokenizer"

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.model.downsample_rate)

    @property
    def codebook_size(self) -> int:
        return int(self.model.quantizer.bins)

    @property
    def total_codebooks(self) -> int:
        return int(self.model.n_q)

    def _encode_rows(self, rows: torch.Tensor, frames: torch.Tensor, num_codebooks: int) -> torch.Tensor:
        return self.model.encode(rows[:, None], n_q=num_codebooks).transpose(0, 1)  # [K, N, F] -> [N, K, F]

    def _decode_rows(self, codes: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes.transpose(0, 1))[:, 0]
