"""Fused kernels behind the model's hot paths (installed as ``codec.kernels``).

One folder per op: ``reference.py`` (pure PyTorch, the ground truth, runs anywhere),
``triton.py`` (Triton kernels and launchers) and a dispatch function in ``__init__.py``.

This folder is the package ``codec.kernels``; its name on disk is the bare name ``kernels``,
which PyPI's ``kernels`` package owns (``transformers`` imports it).  A process started in the
repository root has that root first on ``sys.path``, so ``import kernels`` would find this
folder instead of the installed package.  When this file runs under the bare name, it hands
the name over to the installed package (found on the rest of the path) and steps aside.
"""

import sys

if __name__ == "kernels":
    import importlib
    from pathlib import Path

    def _installed_kernels() -> object | None:
        """The ``kernels`` module found anywhere but in the folder that holds this one."""
        root = Path(__file__).resolve().parent.parent
        saved_path, me = sys.path[:], sys.modules.pop("kernels")
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != root]
        try:
            return importlib.import_module("kernels")
        except ModuleNotFoundError as err:
            if err.name != "kernels":
                raise  # the installed package is there but broken: say so
            sys.modules["kernels"] = me  # none installed: this folder may keep the name
            return None
        finally:
            sys.path[:] = saved_path

    if _installed_kernels() is None:
        from codec.kernels.dispatch import backend_for
else:
    from codec.kernels.dispatch import backend_for

__all__ = ["backend_for"]
