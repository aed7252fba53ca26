"""What ``--model`` and ``--device`` name, for every command: the device a command runs on,
the model it loads, and for a token file, the model that made it (checked against it).

Errors are :class:`~codec.errors.UsageError` lines that name the option, so a missing model
reads ``--model x: no such model directory or bundled model``.
"""

from __future__ import annotations

import argparse

import torch

from codec import pretrained
from codec.api import Codec
from codec.backends import KINDS
from codec.backends.base import Backend
from codec.errors import UsageError
from codec.pipeline.tokenio import ModelMismatchError, check_header
from codec.pretrained import NoBundledModelError
from codec.tokenfile.header import MODEL_NAME, StreamHeader


def resolve_device(text: str) -> str:
    """``--device``: ``auto`` is ``cuda`` when PyTorch sees a GPU, else ``cpu``; a CUDA device
    that is not there is a usage error (before any model is loaded)."""
    if text == "cpu":
        return text
    available = torch.cuda.is_available()
    if text == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise UsageError(f"--device {text}: no CUDA GPU is available here (use --device cpu or auto)")
    count, index = torch.cuda.device_count(), int(text.partition(":")[2] or 0)
    if index >= count:
        raise UsageError(
            f"--device {text}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
        )
    return text


def load_codec(model: str | None, device: str = "cpu") -> Backend:
    """The model named by ``--model``: a bundled name, a directory or a backend spec
    (``dac:descript/dac_16khz``, see :mod:`codec.backends`); default: the bundled default."""
    try:
        return Codec.from_pretrained(model, device=device)
    except NoBundledModelError as err:
        raise UsageError(str(err) if model is None else f"--model {model}: {err}") from None
    except FileNotFoundError:
        raise UsageError(f"--model {model}: no such model directory or bundled model") from None


def model_for(
    args: argparse.Namespace, header: StreamHeader, name: object, cache: dict[str, Backend]
) -> Backend:
    """``--model`` if given, else the bundled model the tokens name; checked against the header.

    A token file names its model; that name is only ever looked up among the bundled models,
    never used as a path, so a file cannot make decode load a directory the user did not name.
    """
    key = args.model or f"bundled:{header.model}"
    if key not in cache:
        if args.model:
            cache[key] = load_codec(args.model, args.device)
        else:
            have = ", ".join(pretrained.available()) or "no bundled model exists yet"
            if not MODEL_NAME.fullmatch(header.model) or header.model not in pretrained.available():
                raise UsageError(
                    f"{name}: made by model {header.model!r}, which this installation does not bundle "
                    f"({have}); pass {model_hint(header.model)}"
                )
            cache[key] = Codec.from_pretrained(pretrained.model_dir(header.model), device=args.device)
    try:
        check_header(cache[key], header, name)
    except ModelMismatchError as err:
        raise ModelMismatchError(f"{err}; pass the right --model") from None
    return cache[key]


def counts_text(codec: Backend) -> str:
    """``1..K``, or the valid counts when only some are (SNAC: whole levels)."""
    counts = codec.codebook_counts()
    full = len(counts) == codec.total_codebooks
    return f"1..{codec.total_codebooks}" if full else ", ".join(map(str, counts))


def model_hint(model: str) -> str:
    """``--model DIR``, or for another codec's tokens the spec that would load its weights."""
    kind, sep, ref = model.partition(":")
    if not sep or kind not in KINDS or kind == "ours":
        return "--model DIR"
    hub_id = ref.replace("--", "/")  # names record a hub id's slash as --
    return f"--model {kind}:HUB_ID_OR_FOLDER (e.g. {kind}:{hub_id}, the weights it was made with)"
