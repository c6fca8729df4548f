"""Instruction generation with a language model through the captioning backends' text chat.

The model drafts the question/options/turns as JSON; pathgen shuffles options itself (to
balance answer positions), and asks the model a second time whether the correct option is
entailed by the caption; items that fail are rejected with a reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources

from .chat import ChatFn

# Reply length of the instruction-drafting calls (a CLOSE item's JSON or up to 3 OPEN turns;
# longer than a caption summary, so not the summarize agent's own reply length).
REPLY_MAX_TOKENS = 512


def _template(name: str) -> str:
    return resources.files("pathgen").joinpath(f"prompts/instruct/{name}.txt").read_text()


def prompts_hash() -> str:
    h = hashlib.sha256()
    for name in ("close", "open", "verify"):
        h.update(_template(name).encode())
    return h.hexdigest()[:12]


def _render(name: str, **kw) -> str:
    text = _template(name)
    for k, v in kw.items():
        text = text.replace("{" + k + "}", str(v))
    return text


def parse_json_reply(reply: str) -> dict:
    """First JSON object in a reply (models often wrap JSON in prose or code fences)."""
    m = re.search(r"\{.*\}", reply or "", re.S)
    if not m:
        raise ValueError("reply holds no JSON object")
    return json.loads(m.group(0))


def llm_close(caption: str, chat: ChatFn) -> dict:
    data = parse_json_reply(chat(_render("close", caption=caption)))
    q, correct, distractors = data.get("question"), data.get("correct"), data.get("distractors")
    if not (isinstance(q, str) and isinstance(correct, str) and isinstance(distractors, list)
            and len(distractors) == 3 and all(isinstance(d, str) and d.strip() for d in distractors)):
        raise ValueError("CLOSE reply needs question, correct and exactly 3 distractors")
    return {"group": "llm", "question": q.strip(), "correct": correct.strip(),
            "distractors": [d.strip() for d in distractors]}


def llm_open(caption: str, chat: ChatFn, n_turns: int) -> list[tuple[str, str]]:
    data = parse_json_reply(chat(_render("open", caption=caption, n_turns=n_turns)))
    turns = [(t.get("question", "").strip(), t.get("answer", "").strip())
             for t in data.get("turns", []) if isinstance(t, dict)]
    turns = [t for t in turns if t[0] and t[1]][:n_turns]
    if not turns:
        raise ValueError("OPEN reply holds no usable turns")
    return turns


def llm_verify(caption: str, statement: str, chat: ChatFn) -> bool:
    reply = chat(_render("verify", caption=caption, statement=statement)).strip().lower()
    return reply.startswith("yes")
