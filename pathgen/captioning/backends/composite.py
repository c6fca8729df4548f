"""A model per agent: describe, revise and summarize each go to their own backend instance
(``captioning.agents.*``). Agents whose resolved settings are identical share one instance;
local models named by several agents (or by the slides of one chunk job) share their weights
(``transformers.PROCESS_WEIGHTS``)."""

from __future__ import annotations

import importlib
import json

from ..budget import TokenBudget
from ..items import PatchItem, Reply
from .base import AGENT_ROLES, Backend

BACKENDS = {
    "openai": ("pathgen.captioning.backends.openai", "OpenAIBackend"),
    "transformers": ("pathgen.captioning.backends.transformers", "TransformersBackend"),
    # measurement-based baseline, not a language model
    "morphometric": ("pathgen.captioning.backends.morphometric", "MorphometricBackend"),
}


def _backend_class(name: str):
    try:
        module, cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"captioning backend {name!r} is unknown; choose one of "
                         f"{', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), cls)


def _build(spec) -> Backend:
    cls = _backend_class(spec.backend)
    if spec.backend == "openai":
        return cls(spec.cfg, endpoints=spec.endpoints)
    if spec.backend == "transformers":  # a summarize agent with its own LM skips the VLM
        return cls(spec.cfg, load_vision=not (spec.role == "summarize" and spec.cfg.text_model),
                   cache=importlib.import_module(BACKENDS["transformers"][0]).PROCESS_WEIGHTS)
    return cls(spec.cfg)


class AgentBackends(Backend):
    """Routes each agent call to that agent's backend."""

    def __init__(self, parts: dict[str, Backend], specs: dict | None = None):
        self.parts, self.specs = parts, specs or {}
        self.name = "+".join(dict.fromkeys(parts[r].name for r in AGENT_ROLES))
        self.model = parts["describe"].model

    def agent_models(self) -> dict[str, dict]:
        out = {}
        for role in AGENT_ROLES:
            info = dict(self.parts[role].agent_models()[role])
            spec = self.specs.get(role)
            if spec is not None:
                info["model"] = spec.model
            out[role] = info
        return out

    async def describe(self, item: PatchItem, prompt: str) -> Reply:
        return await self.parts["describe"].describe(item, prompt)

    async def revise(self, item: PatchItem, description: str, prompt: str) -> Reply:
        return await self.parts["revise"].revise(item, description, prompt)

    async def summarize(self, description: str, prompt: str, budget: TokenBudget) -> Reply:
        return await self.parts["summarize"].summarize(description, prompt, budget)

    async def aclose(self) -> None:
        for b in {id(b): b for b in self.parts.values()}.values():
            await b.aclose()


def make_agents_backend(ccfg) -> AgentBackends:
    """One backend per distinct resolved agent (``ccfg``: CaptioningConfig)."""
    specs = {role: ccfg.agent(role) for role in AGENT_ROLES}
    instances: dict[str, Backend] = {}
    parts = {}
    for role, spec in specs.items():
        text_only = spec.backend == "transformers" and role == "summarize" and spec.cfg.text_model
        key = json.dumps([spec.backend, list(spec.endpoints), bool(text_only),
                          spec.cfg.model_dump(mode="json")], sort_keys=True)
        if key not in instances:
            instances[key] = _build(spec)
        parts[role] = instances[key]
    return AgentBackends(parts, specs)
