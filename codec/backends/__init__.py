"""Other codecs' published weights behind the same tokenizer API (:class:`Backend`).

A model spec ``KIND:REF`` names a backend and where its weights are; ``KIND`` alone (or
``KIND:``) takes the kind's default weights:

================  =============================================  ====================================
kind              loads                                          default REF
================  =============================================  ====================================
ours              this library's model (bundled name or folder)  the bundled default model
encodec           ``transformers`` ``EncodecModel``              facebook/encodec_24khz
dac               ``transformers`` ``DacModel``                  descript/dac_16khz
mimi              ``transformers`` ``MimiModel`` (streams)       kyutai/mimi
snac              the ``snac`` package                           hubertsiuzdak/snac_24khz
speechtokenizer   the ``speechtokenizer`` package                fnlp/SpeechTokenizer
stablecodec       the ``stable-codec`` package                   stabilityai/stable-codec-speech-16k
================  =============================================  ====================================

``REF`` is a Hugging Face hub id (fetched once into the Hugging Face cache where the hub can be
reached) or a local folder (``save_pretrained`` for the ``transformers`` models, the package's
own files for the others).  Every backend is a :class:`Backend`: the same :class:`Codes`
(``[B, K, F]``, lengths, the weights fingerprint), so token files, ``codec tokenize``, the LM
layouts, :class:`codec.tokens.StepDecoder` and ``codec bench`` take any of them.

Peer packages are never imported before a spec of their kind is loaded; a missing one, or
weights that cannot be had, is one :class:`BackendError` line saying what to do.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from codec.errors import InputError

if TYPE_CHECKING:
    import torch

    from codec.backends.base import Backend

# kind -> (module under codec.backends that loads it, default REF)
KINDS: dict[str, tuple[str, str]] = {
    "ours": ("", ""),
    "encodec": ("hf", "facebook/encodec_24khz"),
    "dac": ("hf", "descript/dac_16khz"),
    "mimi": ("hf", "kyutai/mimi"),
    "snac": ("snac_codec", "hubertsiuzdak/snac_24khz"),
    "speechtokenizer": ("speechtokenizer_codec", "fnlp/SpeechTokenizer"),
    "stablecodec": ("stable_codec", "stabilityai/stable-codec-speech-16k"),
}


class BackendError(InputError):
    """A model spec that cannot be loaded: unknown kind, missing package, weights not reachable
    (the user's input or setup: exit status 2 on the command line)."""


def parse(spec: str) -> tuple[str, str]:
    """``KIND[:REF]`` -> ``(kind, ref)`` with the kind's default ``ref`` when none is given."""
    kind, _, ref = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise BackendError(f"{spec}: unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    return kind, ref.strip() or KINDS[kind][1]


def is_spec(text: str) -> bool:
    """Whether ``text`` is a backend spec rather than a bundled name or a model folder.

    ``KIND:REF`` always is (write ``./dac:x`` for a folder of that name); a bare ``KIND`` is
    when nothing of that name exists here.
    """
    kind, sep, _ = text.partition(":")
    if kind.strip().lower() not in KINDS:
        return False
    return bool(sep) or not Path(text).exists()


def load(spec: str, device: str | torch.device | None = None) -> Backend:
    """Load another codec's model by its spec (see the module docstring) on ``device`` (default CPU).

    ``Codec.from_pretrained`` takes every spec, ``ours:`` included; this function the others.
    """
    kind, ref = parse(spec)
    if kind == "ours":
        raise BackendError(f"{spec}: this library's models load with codec.Codec.from_pretrained")
    module = importlib.import_module(f"codec.backends.{KINDS[kind][0]}")
    backend = module.load(kind, ref)
    return backend.to(device) if device is not None else backend


__all__ = ["KINDS", "BackendError", "is_spec", "load", "parse"]
