"""Config section(s) for the dataset stage."""

from __future__ import annotations

from .base import Section


class DatasetConfig(Section):
    pass
