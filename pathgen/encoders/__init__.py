"""Patch/text encoders behind one interface (docs/architecture.md "Encoders").

``load_encoder("plip")`` / ``load_encoder(EncoderSpec(...))`` -> :class:`Encoder`. Names are
looked up in the config's ``encoders`` section, then in the built-ins
(``pathgen.config.features.known_encoders``). Importing this package registers pathgen's
open_clip model configs (e.g. ``pathgen-tiny-vit``) with open_clip.
"""

from __future__ import annotations

from typing import Any

from ..config.features import EncoderSpec, known_encoders
from .base import Encoder, EncoderError, resolve_autocast_dtype, resolve_device
from .model_configs import MODEL_CONFIG_DIR, ensure_model_configs  # noqa: F401 (package API)
from .registry import KINDS, builder_for, register_kind


def resolve_spec(spec_or_name: str | EncoderSpec | dict[str, Any], cfg=None) -> tuple[str, EncoderSpec]:
    """Name/spec/dict -> (name, validated spec); unknown names list the known ones."""
    if isinstance(spec_or_name, EncoderSpec):
        return spec_or_name.arch or spec_or_name.pretrained or spec_or_name.kind, spec_or_name
    if isinstance(spec_or_name, dict):
        spec = EncoderSpec(**spec_or_name)
        return spec.arch or spec.pretrained or spec.kind, spec
    known = known_encoders(cfg.encoders if cfg is not None else None)
    if spec_or_name not in known:
        raise EncoderError(f"unknown encoder '{spec_or_name}'; known encoders: "
                           f"{', '.join(sorted(known))} (define more under `encoders:` in the config)")
    return spec_or_name, known[spec_or_name]


def load_encoder(spec_or_name: str | EncoderSpec | dict[str, Any], cfg=None,
                 device: str = "cpu", name: str | None = None) -> Encoder:
    """Build an encoder on ``device`` ('auto' = cuda if available), in eval mode. ``name``:
    the config's name of a resolved spec (it is part of :attr:`Encoder.identifier`)."""
    resolved, spec = resolve_spec(spec_or_name, cfg)
    name = name or resolved
    dev = resolve_device(device)
    enc = builder_for(spec.kind)(name, spec, dev)
    enc.autocast_dtype = resolve_autocast_dtype(spec.precision, dev)
    return enc


# Kind modules register themselves on import.
from . import hfclip, openclip, vision  # noqa: E402,F401

ensure_model_configs()

__all__ = ["Encoder", "EncoderError", "EncoderSpec", "KINDS", "load_encoder", "known_encoders",
           "register_kind", "resolve_device", "resolve_spec", "ensure_model_configs",
           "MODEL_CONFIG_DIR"]
