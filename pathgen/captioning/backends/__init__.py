"""Backend registry: name -> factory (module imported lazily; heavy deps stay optional)."""

from __future__ import annotations

import importlib

from .base import Backend

BACKENDS = {
    "openai": ("pathgen.captioning.backends.openai", "OpenAIBackend", "openai"),
    "transformers": ("pathgen.captioning.backends.transformers", "TransformersBackend",
                     "transformers"),
    # measurement-based baseline, not a language model
    "morphometric": ("pathgen.captioning.backends.morphometric", "MorphometricBackend",
                     "morphometric"),
}


def make_backend(ccfg) -> Backend:
    """Build the backend named by ``ccfg.backend`` (``ccfg``: CaptioningConfig)."""
    try:
        module, cls, section = BACKENDS[ccfg.backend]
    except KeyError:
        raise ValueError(f"captioning.backend {ccfg.backend!r} is unknown; choose one of "
                         f"{', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), cls)(getattr(ccfg, section))


__all__ = ["Backend", "BACKENDS", "make_backend"]
