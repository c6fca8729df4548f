"""Config section(s) for the captioning stage (the describe -> revise -> summarize agents)."""

from __future__ import annotations

from pydantic import Field

from .base import Section


class CaptioningConfig(Section):
    backend: str = Field("morphometric", description="Backend used by all three agents.")

    def tag(self) -> str:
        """Folder-name tag; changes whenever a setting that shapes the captions changes."""
        return self.backend
