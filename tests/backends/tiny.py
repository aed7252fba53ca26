"""Tiny randomly initialised peer models, saved the way published weights are (no hub).

Each is built from its library's config with the published architecture shrunk (a few
filters, one transformer layer, small codebooks), its codebooks filled with random entries
(EnCodec's and Mimi's start at zero, which would give one code everywhere), and written
with ``save_pretrained`` (or the package's own file layout), so the backends load them exactly
as they load downloaded weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def _random_codebooks(model: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if hasattr(module, "embed_sum"):  # Mimi: entries are embed_sum / cluster_usage
            module.embed_sum.copy_(torch.randn(module.embed_sum.shape, generator=gen))
            module.cluster_usage.fill_(1.0)
            module._embed = None
        elif hasattr(module, "embed_avg"):  # EnCodec, SpeechTokenizer (k-means would run on first use)
            module.embed.copy_(torch.randn(module.embed.shape, generator=gen))
            module.embed_avg.copy_(module.embed)
            if hasattr(module, "inited"):
                module.inited.fill_(1.0)


def tiny_transformers_model(kind: str) -> torch.nn.Module:
    """A small random EnCodec, DAC or Mimi (``transformers``), eval mode."""
    t = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "encodec":
        cfg = t.EncodecConfig(num_filters=8, hidden_size=32, num_lstm_layers=1, codebook_dim=32)
        model = t.EncodecModel(cfg)
    elif kind == "dac":
        cfg = t.DacConfig(encoder_hidden_size=8, decoder_hidden_size=32, hidden_size=32, n_codebooks=4,
                          codebook_size=64, codebook_dim=4, downsampling_ratios=[2, 4, 5, 8],
                          upsampling_ratios=[8, 5, 4, 2])  # fmt: skip
        model = t.DacModel(cfg)
    elif kind == "mimi":
        cfg = t.MimiConfig(hidden_size=32, num_filters=8, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=2, head_dim=16, intermediate_size=64, codebook_dim=32,
                           num_quantizers=4, num_semantic_quantizers=1, codebook_size=64, upsample_groups=32,
                           vector_quantization_hidden_dimension=32, sliding_window=6)  # fmt: skip
        model = t.MimiModel(cfg)
    else:
        raise ValueError(kind)
    with torch.no_grad():
        _random_codebooks(model)
    return model.eval()


SNAC_CONFIG = {
    "sampling_rate": 24000, "encoder_dim": 8, "encoder_rates": [2, 4, 8, 8], "decoder_dim": 32,
    "decoder_rates": [8, 8, 4, 2], "attn_window_size": None, "codebook_size": 64, "codebook_dim": 4,
    "vq_strides": [4, 2, 1], "noise": True, "depthwise": True,
}  # fmt: skip
SPEECHTOKENIZER_CONFIG = {
    "n_filters": 8, "dimension": 32, "semantic_dimension": 16, "strides": [8, 5, 4, 2], "lstm_layers": 1,
    "bidirectional": True, "dilation_base": 2, "residual_kernel_size": 3, "n_residual_layers": 1,
    "activation": "ELU", "sample_rate": 16000, "n_q": 4, "codebook_size": 64,
}  # fmt: skip


def save_tiny(kind: str, folder: Path, **changes: object) -> Path:
    """Write a tiny ``kind`` model into ``folder`` as its hub repository holds it.

    ``changes`` override SNAC's or SpeechTokenizer's config (e.g. ``attn_window_size=4``).
    """
    import json

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if kind == "snac":
        snac = pytest.importorskip("snac")
        config = {**SNAC_CONFIG, **changes}
        model = snac.SNAC(**config)
        (folder / "config.json").write_text(json.dumps(config))
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    elif kind == "speechtokenizer":
        st = pytest.importorskip("speechtokenizer")
        config = {**SPEECHTOKENIZER_CONFIG, **changes}
        model = st.SpeechTokenizer(config)
        with torch.no_grad():
            _random_codebooks(model)
        where = folder / "speechtokenizer_hubert_avg"  # the published repository's layout
        where.mkdir(exist_ok=True)
        (where / "config.json").write_text(json.dumps(config))
        torch.save(model.state_dict(), where / "SpeechTokenizer.pt")
    else:
        from codec.backends.hf import quiet_transformers

        with quiet_transformers():  # no progress bar on stderr (tests read it)
            tiny_transformers_model(kind).save_pretrained(folder)
    return folder


KINDS = ("encodec", "dac", "mimi", "snac", "speechtokenizer")
