"""A backend's weights from a local folder, the Hugging Face cache or the hub, failing fast.

Loading a hub id through its library on a machine that cannot reach the hub retries for about
half a minute and ends in a long error.  Here a hub id is first looked up in the local cache
(no network at all); only when it is not there is the hub asked, once, with a short timeout,
and an unreachable hub, an offline setting or an unknown id becomes one :class:`BackendError`
line naming the model and how to get its weights.  ``HF_HUB_OFFLINE=1`` skips the question.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from codec.backends import BackendError

T = TypeVar("T")
PROBE_SECONDS = 5.0  # one HEAD request to the hub; a reachable hub answers in well under a second

# What a failing loader may raise: a missing or damaged file, a config of another model (its
# keys are not the constructor's: TypeError), mismatched weights.
LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


def model_name(kind: str, ref: str) -> str:
    """A plain name for token files (no path separators): ``dac:descript--dac_16khz``, ``dac:my_dac``."""
    folder = Path(ref).expanduser()
    base = folder.resolve().name if folder.exists() else ref.strip("/").replace("/", "--")
    return f"{kind}:{base}"[:128]


def local_folder(kind: str, ref: str) -> Path | None:
    """The folder ``ref`` names, or ``None`` for a hub id; a path that is not there is an error."""
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BackendError(f"{kind}:{ref}: is a file; give the folder that holds the model's files")
        return path
    if ref.startswith((".", "/", "~", os.sep)) or ref.count("/") > 1 or "\\" in ref:
        raise BackendError(f"{kind}:{ref}: no such folder")
    return None


def how_to_get(kind: str, ref: str, flag: str = "") -> str:
    """How to get ``ref``'s weights; ``flag`` names the option that takes a folder (``--model KIND:``)."""
    name = ref.rsplit("/", 1)[-1]
    flag = flag or f"--model {kind}:"
    return (
        f"on a machine with network access run `hf download {ref} --local-dir {name}` "
        f"and pass {flag}./{name} (or run `hf download {ref}` to fill the Hugging Face cache)"
    )


def hub_offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    return bool(constants.HF_HUB_OFFLINE)


def probe(ref: str) -> str | None:
    """Why the hub cannot give ``ref`` (one request, no retries), or ``None`` when it can."""
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import get_session
    except ImportError:
        return "the huggingface_hub package is not installed"
    url = f"{constants.ENDPOINT}/api/models/{ref}"
    try:
        status = get_session().head(url, timeout=PROBE_SECONDS).status_code
    except Exception as err:  # any failure to connect: DNS, refused, timeout, proxy, TLS
        return f"{constants.ENDPOINT} cannot be reached ({first_line(err)})"
    if status in (401, 403, 404):
        return (
            f"the hub has no model {ref!r} you may read (HTTP {status}), nor is there a folder of that name"
        )
    if status >= 400:
        return f"the hub answered HTTP {status}"
    return None


def fetch(kind: str, ref: str, load: Callable[..., T], flag: str = "") -> T:
    """The model ``load`` makes from a folder or hub id ``ref``, without waiting on an unreachable hub.

    Args:
        kind: the backend kind (for messages).
        ref: a local folder or a hub id.
        load: ``load(folder_or_id, **kwargs)``; it must accept ``local_files_only=True`` for a
            hub id (look in the cache only), as ``from_pretrained`` and ``hf_hub_download`` do.
        flag: the option that takes a local folder instead (default ``--model KIND:``).
    """
    spec = f"{kind}:{ref}"
    folder = local_folder(kind, ref)
    if folder is not None:
        return _call(spec, lambda: load(str(folder)))
    try:
        return load(ref, local_files_only=True)
    except LOAD_ERRORS:
        pass  # not in the cache (or only part of it): ask the hub
    if hub_offline():
        raise BackendError(
            f"{spec}: the weights are not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
            + how_to_get(kind, ref, flag)
        )
    problem = probe(ref)
    if problem:
        how = how_to_get(kind, ref, flag)
        raise BackendError(f"{spec}: the weights are not in the Hugging Face cache and {problem}; {how}")
    return _call(spec, lambda: load(ref))


def _call(spec: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except LOAD_ERRORS as err:
        raise BackendError(f"{spec}: cannot load the model ({first_line(err)})") from None


def need(package: str, kind: str, pip: str = "") -> None:
    """A :class:`BackendError` naming what to install when ``package`` cannot be imported.

    The package is imported here, so a dependency it needs but does not declare (speechtokenizer
    1.0.1 imports beartype) is named too, rather than ending in a traceback later.
    """
    import importlib

    try:
        importlib.import_module(package)
    except ImportError as err:
        missing = f" ({first_line(err)})" if getattr(err, "name", package) != package else ""
        what = f"{kind} models need the {package} package{missing}"
        raise BackendError(f"{what}: pip install {pip or package}") from None
