"""Text chat for the `llm` generator, through the captioning stage's configured backend."""

from __future__ import annotations

import functools
from typing import Callable

from ..config import ConfigError


def chat_for(cfg) -> Callable[[str], str]:
    """A blocking ``prompt -> reply`` function over the captioning backend's server/model."""
    backend = cfg.captioning.backend
    if backend == "openai":
        from ..captioning.backends.openai import chat_text

        return functools.partial(chat_text, cfg=cfg.captioning.openai)
    if backend == "transformers":
        from ..captioning.backends.transformers import text_chat

        return text_chat(cfg.captioning.transformers)
    raise ConfigError(f"instruct.generator 'llm' needs a language model, but captioning.backend is "
                      f"{backend!r}; set captioning.backend to 'openai' or 'transformers', or use "
                      "instruct.generator: offline")
