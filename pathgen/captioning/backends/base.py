"""What every captioning backend provides: three async agent calls on one item.

Backends are driven by :mod:`pathgen.captioning.pipeline`, which runs many items
concurrently; a backend that batches (transformers) gathers concurrent calls itself.
"""

from __future__ import annotations

import abc

from ..budget import TokenBudget
from ..items import PatchItem, Reply


AGENT_ROLES = ("describe", "revise", "summarize")


class Backend(abc.ABC):
    name: str = "?"
    model: str = "?"

    def agent_models(self) -> dict[str, dict]:
        """Which backend and model answers each agent (stored in every record's provenance)."""
        return {role: {"backend": self.name, "model": self.model} for role in AGENT_ROLES}

    @abc.abstractmethod
    async def describe(self, item: PatchItem, prompt: str) -> Reply: ...

    @abc.abstractmethod
    async def revise(self, item: PatchItem, description: str, prompt: str) -> Reply: ...

    @abc.abstractmethod
    async def summarize(self, description: str, prompt: str, budget: TokenBudget) -> Reply: ...

    async def aclose(self) -> None:  # noqa: B027 (optional hook: backends without resources keep it)
        """Release connections/threads (called once at the end of a run)."""
