"""The agents' prompt templates (the loader lives in pathgen/config/prompts.py: the config's
prompt hash reads them, and config imports nothing above it)."""

from ..config.prompts import AGENT_TEMPLATES, PACKAGED_DIR, PromptError, Templates, load_templates

__all__ = ["AGENT_TEMPLATES", "PACKAGED_DIR", "PromptError", "Templates", "load_templates"]
