"""Lazy package exports (PEP 562): a package's names are imported from their modules on first use.

A package ``__init__`` that imported its modules eagerly would make importing any one of them
import all the others (Python runs the package's ``__init__`` first): importing
``codec.tokens.codes`` would load the step detokenizer and, through it, the stream it decodes
with, which imports ``codec.tokens.codes`` again.  With lazy exports a module costs only what it
imports itself, so the import graph that the layout test reads is the one that runs, and
``codec --help`` loads no PyTorch.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose ``names`` map to defining modules.

    Usage in a package's ``__init__``::

        __getattr__, __dir__ = exports(__name__, {"Codes": "codec.tokens.codes"})
    """

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(importlib.import_module(package), name, value)  # later look-ups skip this function
        return value

    def dir_() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *names})

    return getattr_, dir_


def moved(module: str, names: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """``__getattr__`` for ``module`` whose ``names`` moved: old name -> (new module, new name).

    The old name still works and warns (:class:`DeprecationWarning`) with the new place, so
    code written against an earlier layout keeps running while it is updated.
    """

    def getattr_(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_module, new_name = names[name]
        warnings.warn(
            f"{module}.{name} is deprecated; use {new_module}.{new_name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(new_module), new_name)

    return getattr_
