"""The one text-chat adapter: a blocking ``prompt -> reply`` function over the captioning
stage's configured model (used by instruction generation and by report-findings extraction)."""

from __future__ import annotations

import functools
from typing import Callable

from ..config import ConfigError

ChatFn = Callable[[str], str]


def openai_chat(ocfg, max_tokens: int = 512) -> ChatFn:
    """``prompt -> reply`` over the OpenAI-compatible server of ``captioning.openai``
    (:func:`pathgen.captioning.backends.openai.chat_text`)."""
    from ..captioning.backends import openai

    return functools.partial(openai.chat_text, cfg=ocfg, max_tokens=max_tokens)


def chat_for(cfg) -> ChatFn:
    """A blocking ``prompt -> reply`` function over the captioning backend's server/model."""
    backend = cfg.captioning.backend
    if backend == "openai":
        return openai_chat(cfg.captioning.openai)
    if backend == "transformers":
        from ..captioning.backends.transformers import text_chat

        return text_chat(cfg.captioning.transformers)
    raise ConfigError(f"instruct.generator 'llm' needs a language model, but captioning.backend is "
                      f"{backend!r}; set captioning.backend to 'openai' or 'transformers', or use "
                      "instruct.generator: offline")
