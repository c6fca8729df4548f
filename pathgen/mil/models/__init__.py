"""MIL aggregators, one module per model, behind a small registry.

Every model maps a bag `(N, D)` to a dict with `logits` (1, C) and `attention` (N,) (weights
summing to 1, drawn as heatmaps) and exposes `loss(out, y)` (its training objective).
"""

from __future__ import annotations

from torch import nn

from .abmil import ABMIL
from .acmil import ACMIL
from .transmil import TransMIL

MODELS: dict[str, type[nn.Module]] = {"abmil": ABMIL, "acmil": ACMIL, "transmil": TransMIL}


def build_model(name: str, in_dim: int, n_classes: int, **kw) -> nn.Module:
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown MIL model {name!r}; known: {', '.join(MODELS)}") from None
    return cls(in_dim=in_dim, n_classes=n_classes, **kw)
