"""Tiny versions of the speech-LM presets for tests: the presets' rates, codebooks and trunk
rate changes, with narrow and shallow trunks so that a model builds and runs in milliseconds."""

from __future__ import annotations

import dataclasses

from codec.config import CodecConfig

PRESETS = ["low_frame_rate_16k", "single_codebook_16k"]


def tiny_config(preset: str, **changes: object) -> CodecConfig:
    """``preset``'s model config with 32-wide, one-block trunks (fine blocks kept at one each).

    Args:
        preset: a bundled preset name.
        changes: top-level :class:`CodecConfig` fields to replace as well (e.g. ``causal``).
    """
    cfg = CodecConfig.from_yaml(preset)
    small = {"dim": 32, "intermediate_dim": 64, "num_layers": 1, "kernel_size": 3}
    encoder = dataclasses.replace(cfg.encoder, **small, fine_layers=min(cfg.encoder.fine_layers, 1))
    decoder = dataclasses.replace(cfg.decoder, **small, fine_layers=min(cfg.decoder.fine_layers, 1))
    return dataclasses.replace(
        cfg, name=f"tiny-{preset}", latent_dim=32, encoder=encoder, decoder=decoder, **changes
    )
