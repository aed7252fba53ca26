"""Codec SPECs (``KIND[:MODEL][@KBPS,...]``) -> adapters: the one place that knows every kind.

Kept apart from :mod:`codec.bench.adapters` (the interface and the adapter over every model
of :mod:`codec.backends`, ours included), which the baseline module imports: the registry
imports them, never the reverse.
"""

from __future__ import annotations

import numpy as np

from codec.backends import KINDS, BackendError
from codec.bench.adapters import Adapter, BackendAdapter, Spec, SpecError, levels_for
from codec.bench.baselines import build_lyra, build_opus


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


def _build_backend(spec: Spec) -> list[Adapter]:
    """Ours or another codec's weights: the model loaded once (``Codec.from_pretrained``), one
    :class:`BackendAdapter` per bitrate, each a whole number of leading codebooks."""
    from codec import Codec
    from codec.checkpoint import CheckpointError
    from codec.pretrained import NoBundledModelError

    text = f"{spec.kind}:{spec.model}" if spec.model else spec.kind
    try:
        backend = Codec.from_pretrained(f"{spec.kind}:{spec.model or ''}")
    except BackendError as err:
        raise SpecError(str(err)) from None
    except (NoBundledModelError, FileNotFoundError, CheckpointError) as err:
        raise SpecError(f"{text}: {err}") from None
    per_level = backend.frame_rate * np.log2(backend.codebook_size)
    counts = backend.codebook_counts()
    return [BackendAdapter(backend, levels_for(r, per_level, counts, text)) for r in spec.kbps]


BUILDERS = {"lyra": build_lyra, "opus": build_opus, **dict.fromkeys(KINDS, _build_backend)}
