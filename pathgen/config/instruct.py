"""Config section(s) for the instruct stage."""

from __future__ import annotations

from .base import Section


class InstructConfig(Section):
    pass
