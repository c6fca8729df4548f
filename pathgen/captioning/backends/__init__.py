"""Backend registry: name -> class (module imported lazily; heavy deps stay optional), and
the per-agent backend built from a CaptioningConfig."""

from __future__ import annotations

from .base import AGENT_ROLES, Backend
from .composite import BACKENDS, AgentBackends, make_agents_backend


def make_backend(ccfg) -> Backend:
    """The backend(s) of ``ccfg`` (CaptioningConfig): one per agent as ``captioning.agents``
    resolves them; a plain single-model config gives one shared instance."""
    return make_agents_backend(ccfg)


__all__ = ["AGENT_ROLES", "AgentBackends", "Backend", "BACKENDS", "make_backend"]
