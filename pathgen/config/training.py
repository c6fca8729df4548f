"""Config section(s) for the training stage."""

from __future__ import annotations

from .base import Section


class TrainingConfig(Section):
    pass
