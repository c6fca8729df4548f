"""Config section(s) for the cluster stage."""

from __future__ import annotations

from .base import Section


class ClusterConfig(Section):
    pass
