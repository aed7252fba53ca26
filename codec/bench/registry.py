"""Codec SPECs (``KIND[:MODEL][@KBPS,...]``) -> adapters: the one place that knows every kind.

Kept apart from :mod:`codec.bench.adapters` (the interface and our model's adapter), which the
baseline and peer modules import: the registry imports them, never the reverse.
"""

from __future__ import annotations

import numpy as np

from codec.bench.adapters import Adapter, OursAdapter, Spec, SpecError, levels_for, weights_digest
from codec.bench.baselines import build_lyra, build_opus
from codec.bench.peers import build_peer


def parse_spec(text: str, default_kbps: tuple[float, ...] = ()) -> Spec:
    """Parse ``KIND[:MODEL][@KBPS,KBPS,...]`` (see the module docstring)."""
    head, _, rates = text.partition("@")
    kind, _, model = head.partition(":")
    kind = kind.strip().lower()
    if kind not in BUILDERS:
        raise SpecError(f"codec {text!r}: unknown codec {kind!r} (known: {', '.join(sorted(BUILDERS))})")
    try:
        kbps = tuple(float(r) for r in rates.split(",") if r.strip()) if rates else tuple(default_kbps)
    except ValueError:
        raise SpecError(f"codec {text!r}: bitrates must be numbers in kbps, e.g. {kind}@3,6") from None
    if not kbps:
        raise SpecError(f"codec {text!r}: no bitrate given (add @KBPS or use --bitrates)")
    if any(not 0 < r < 10_000 for r in kbps):
        raise SpecError(f"codec {text!r}: bitrates must be positive kbps, got {kbps}")
    return Spec(kind, model.strip() or None, kbps)


def build_adapters(spec: Spec) -> list[Adapter]:
    """One adapter per bitrate of ``spec`` (the model is loaded once and shared)."""
    adapters = BUILDERS[spec.kind](spec)
    for a, kbps in zip(adapters, spec.kbps, strict=True):
        a.spec = f"{spec.kind}{':' + spec.model if spec.model else ''}@{kbps:g}"
    return adapters


def _build_ours(spec: Spec) -> list[Adapter]:
    from codec import Codec
    from codec.checkpoint import CheckpointError
    from codec.pretrained import NoBundledModelError

    try:
        codec = Codec.from_pretrained(spec.model)
    except (NoBundledModelError, FileNotFoundError, CheckpointError) as err:
        raise SpecError(f"ours:{spec.model}: {err}") from None
    identity = weights_digest(codec.model)
    per_level = codec.frame_rate * np.log2(codec.codebook_size)
    text = f"ours:{spec.model or codec.name}"
    return [
        OursAdapter(codec, levels_for(r, per_level, codec.total_codebooks, text), identity) for r in spec.kbps
    ]


BUILDERS = {
    "ours": _build_ours,
    "lyra": build_lyra,
    "opus": build_opus,
    "encodec": build_peer,
    "dac": build_peer,
    "mimi": build_peer,
}
