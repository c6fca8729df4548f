"""Config section for instruction data (PathGen-Instruct style) built from the captions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class InstructConfig(Section):
    enabled: bool = Field(True, description="Build instruction data in the workflow.")
    generator: Literal["offline", "llm"] = Field(
        "offline", description="'offline': keyword-grounded templates (deterministic, not a language "
                               "model); 'llm': the summarize agent's model (captioning.agents.summarize) writes the items.")
    close_per_patch: int = Field(2, ge=0, le=10, description="Max CLOSE (4-option) items per patch.")
    open_per_patch: int = Field(1, ge=0, le=1, description="OPEN conversations per patch (0 or 1).")
    max_turns: int = Field(3, ge=1, le=3, description="Max question/answer turns per OPEN item.")
    verify_with_llm: bool = Field(True, description="llm generator: ask the model whether the correct "
                                                    "option is entailed by the caption; reject if not.")
    seed: int = 0
    jpeg_quality: int = Field(90, ge=50, le=100)
