"""The one text-chat adapter: a blocking ``prompt -> reply`` function over the pipeline's text
model, the summarize agent (``captioning.agents.summarize``, which inherits the captioning
backend's settings; resolved by :meth:`CaptioningConfig.agent`, the one resolver). Used by
instruction generation (``instruct.generator: llm``), report-findings extraction
(``selection.report_extractor: llm``) and the agents' llm corrupter.

Callers get the resolved settings (an :class:`AgentSpec`) from their glue (chunk stage, CLI,
rule params) and never the whole config: :func:`chat_params` / :func:`chat_from_params` carry
them through a rule's ``params`` (so a model change reruns the rule)."""

from __future__ import annotations

import asyncio
from typing import Callable

from ..config import ConfigError
from ..config.captioning import AgentSpec, OpenAIBackendConfig, TransformersBackendConfig

ChatFn = Callable[[str], str]
# backends that can write text (morphometric is a measurement baseline, not a language model)
TEXT_SECTIONS = {"openai": OpenAIBackendConfig, "transformers": TransformersBackendConfig}


def chat_settings(ccfg, user: str) -> AgentSpec:
    """The summarize agent of ``ccfg`` (CaptioningConfig), resolved; ``user`` names the setting
    that asks for a language model (for the error)."""
    spec = ccfg.agent("summarize")
    if spec.backend not in TEXT_SECTIONS:
        raise ConfigError(
            f"{user} needs a language model, but the summarize agent's backend is "
            f"{spec.backend!r} (captioning.agents.summarize.backend, default captioning.backend); "
            "set it to 'openai' or 'transformers' (captioning.agents.summarize: {backend: openai, "
            "model: ..., endpoint: ...} leaves describe/revise as they are), or use the offline "
            "option of that setting")
    return spec


def chat_id(spec: AgentSpec) -> str:
    """Provenance of what wrote a text: backend and model (e.g. 'openai:Qwen/Qwen2.5-7B')."""
    return f"{spec.backend}:{spec.model}"


def chat_params(spec: AgentSpec) -> dict:
    """The resolved chat settings as a JSON-able rule param (the job rebuilds them)."""
    return {"backend": spec.backend, "model": spec.model, "endpoints": list(spec.endpoints),
            "settings": spec.cfg.model_dump(mode="json")}


def chat_from_params(params: dict) -> AgentSpec:
    """Inverse of :func:`chat_params` (validated: a bad value names the key)."""
    try:
        section = TEXT_SECTIONS[params["backend"]]
    except KeyError:
        raise ConfigError(f"chat settings {sorted(params)} need backend one of "
                          f"{', '.join(TEXT_SECTIONS)}") from None
    return AgentSpec("summarize", params["backend"], params["model"],
                     tuple(params.get("endpoints") or ()), section.model_validate(params["settings"]))


class TextChat:
    """``prompt -> reply`` over the summarize agent's server(s) or local model; ``max_tokens``
    is the caller's reply length (findings lists and instruction JSON are longer than a
    caption summary). The agent's backend (the captioning one: every endpoint, retries, key,
    temperature, seed; local weights shared with the process's agents) is built on the first
    call; calls run on one private event loop. ``close()`` (or ``with``) releases both."""

    def __init__(self, spec: AgentSpec, max_tokens: int):
        if spec.backend not in TEXT_SECTIONS:
            raise ConfigError(f"text chat needs backend openai or transformers, got {spec.backend!r}")
        self.spec, self.max_tokens, self.id = spec, max_tokens, chat_id(spec)
        self._backend = self._loop = None

    def _build(self) -> None:
        spec = self.spec
        if spec.backend == "transformers":
            from ..captioning.backends.transformers import PROCESS_WEIGHTS, TransformersBackend

            # a summarize agent with its own text_model never loads the describe VLM
            self._backend = TransformersBackend(spec.cfg, load_vision=not spec.cfg.text_model,
                                                cache=PROCESS_WEIGHTS)
        else:
            from ..captioning.backends.openai import OpenAIBackend

            self._backend = OpenAIBackend(spec.cfg, endpoints=spec.endpoints)
        self._loop = asyncio.new_event_loop()

    async def _ask(self, prompt: str) -> str:
        if self.spec.backend == "transformers":
            return await self._backend.chat(prompt, self.max_tokens)
        reply = await self._backend.client.chat([{"role": "user", "content": prompt}],
                                                self.max_tokens, self.spec.model)
        return reply.text

    def __call__(self, prompt: str) -> str:
        if self._backend is None:
            self._build()
        return self._loop.run_until_complete(self._ask(prompt))

    def close(self) -> None:
        if self._backend is not None:
            try:
                self._loop.run_until_complete(self._backend.aclose())
            finally:
                self._loop.close()
                self._backend = self._loop = None

    def __enter__(self) -> "TextChat":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

