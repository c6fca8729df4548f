"""Lazy package exports (PEP 562): `from pathgen.mil import build_model` still works, but
importing the package (e.g. for the CLI's --help) no longer pulls in torch/open_clip/sklearn."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """Return (__getattr__, __dir__) resolving ``name`` from ``exports[name]`` (a submodule)."""

    def __getattr__(name: str):
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(importlib.import_module(module, package), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
