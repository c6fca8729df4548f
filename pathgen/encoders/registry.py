"""Encoder kinds registry: ``kind`` name -> builder(name, spec, device) -> Encoder.

Each kind lives in its own module and registers itself with :func:`register_kind`; the
factory looks the kind up here, so adding a kind never touches an if-chain.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config.features import EncoderSpec
from .base import Encoder, EncoderError

Builder = Callable[[str, EncoderSpec, torch.device], Encoder]
KINDS: dict[str, Builder] = {}


def register_kind(name: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        if name in KINDS and KINDS[name] is not fn:
            raise EncoderError(f"encoder kind '{name}' registered twice")
        KINDS[name] = fn
        return fn
    return deco


def builder_for(kind: str) -> Builder:
    try:
        return KINDS[kind]
    except KeyError:
        raise EncoderError(f"unknown encoder kind '{kind}'; known kinds: "
                           f"{', '.join(sorted(KINDS))}") from None
