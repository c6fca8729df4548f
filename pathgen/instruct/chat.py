"""Text chat for the `llm` generator, through the captioning stage's configured backend."""

from __future__ import annotations

from typing import Callable


def chat_for(cfg) -> Callable[[str], str]:
    """A blocking ``prompt -> reply`` function over the captioning backend (openai/transformers)."""
    from ..captioning.backends import make_text_chat  # the captioning stage owns the backends

    return make_text_chat(cfg.captioning)
