"""LLM corrupter: a text chat (the summarize agent's model) writes the one controlled edit.

The kind (and, for modify, the attribute) is drawn by the caller, so the mix of edits is
controlled as with the rule-based corrupter. A reply that is empty, unchanged or a rewrite
rather than one edit is rejected and the rule-based edit is used instead, labelled so.
"""

from __future__ import annotations

import random
from typing import Callable

from ..captioning.pipeline import edit_ratio
from .corrupt import Corruption, corrupt
from .vocab import SWAP_GROUPS

PROMPT = """You edit descriptions of H&E-stained histology images to make training data for a \
model that detects errors.

Description:
\"\"\"
{description}
\"\"\"

Make exactly one edit: {instruction}. Change nothing else, keep the style, and do not mark or \
explain the edit. Return only the edited description."""

INSTRUCTIONS = {
    "add": "add one short sentence that states a plausible histological feature the description "
           "does not mention (for example necrosis, mitoses, mucin, calcification, haemorrhage)",
    "delete": "delete one sentence that states a feature the description mentions",
    "modify": "change the {attribute} in one statement to a wrong but plausible value",
}
MAX_EDIT_RATIO = 0.5  # more of the words changed than this is a rewrite, not one edit


def _check(original: str, reply: str) -> str | None:
    """Why an LLM reply is not one edit (None = usable)."""
    text = " ".join((reply or "").split()).strip('"').strip()
    if not text:
        return "empty reply"
    if text == " ".join(original.split()):
        return "unchanged"
    if edit_ratio(original, text) > MAX_EDIT_RATIO:
        return "rewrote the description"
    return None


def corrupt_with_llm(text: str, kinds: list[str], rng: random.Random,
                     chat: Callable[[str], str]) -> Corruption | None:
    kind = rng.choice(kinds)
    attribute = rng.choice(sorted(SWAP_GROUPS)) if kind == "modify" else None
    instruction = INSTRUCTIONS[kind].format(attribute=attribute)
    reply = chat(PROMPT.format(description=text, instruction=instruction))
    why = _check(text, reply)
    if why is None:
        return Corruption(" ".join(reply.split()).strip('"').strip(), kind, attribute,
                          {"instruction": instruction}, corrupter="llm")
    edit = corrupt(text, kinds, rng)
    if edit is None:
        return None
    return Corruption(edit.text, edit.kind, edit.attribute, {**edit.detail, "llm_rejected": why},
                      corrupter="rules (llm reply rejected)")
