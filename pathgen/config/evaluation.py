"""Config section(s) for the evaluation stage."""

from __future__ import annotations

from .base import Section


class EvaluationConfig(Section):
    pass
