"""Config section(s) for the selection stage."""

from __future__ import annotations

from .base import Section


class SelectionConfig(Section):
    pass
