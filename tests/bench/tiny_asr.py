"""A tiny random Whisper (model, feature extractor and a byte-level tokenizer) saved to a folder.

Its weights are random but large (``init_std=1``) and its output is restricted to the letters
``a``-``h``, space and the end token, so its "transcripts" are words that depend on the audio:
enough to check the word error rate's plumbing, not any recognition.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
            "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]  # fmt: skip


def _byte_symbols() -> dict[int, str]:
    """Byte -> the printable character byte-level BPE vocabularies spell it with."""
    keep = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    out, extra = {}, 0
    for b in range(256):
        out[b] = chr(b) if b in keep else chr(256 + extra)
        extra += b not in keep
    return out


def save_tiny_whisper(folder: Path) -> Path:
    t = pytest.importorskip("transformers")
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols.values())}
    vocab.update({s: len(vocab) + n for n, s in enumerate(SPECIALS)})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    end = "<|endoftext|>"
    tokenizer = t.WhisperTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token=end, bos_token=end, eos_token=end,
        pad_token=end, additional_special_tokens=SPECIALS[1:],
    )  # fmt: skip
    processor = t.WhisperProcessor(
        feature_extractor=t.WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer
    )
    config = t.WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=64, init_std=1.0, pad_token_id=vocab[end],
        decoder_start_token_id=vocab["<|startoftranscript|>"], eos_token_id=vocab[end],
        bos_token_id=vocab[end],
    )  # fmt: skip
    torch.manual_seed(0)
    model = t.WhisperForConditionalGeneration(config).eval()
    allowed = {vocab[symbols[b]] for b in b"abcdefgh "} | {vocab[end]}
    gen = model.generation_config
    gen.no_timestamps_token_id = vocab["<|notimestamps|>"]
    gen.suppress_tokens = [i for i in range(len(vocab)) if i not in allowed]
    gen.begin_suppress_tokens = [vocab[end]]
    gen.max_length = 16
    from codec.backends.hf import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
