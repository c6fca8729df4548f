"""Offline, deterministic instruction generator: keyword-grounded templates, NOT a language model.

CLOSE items ask about an attribute group (cellularity, nuclear size, ...) only when the
caption states exactly one of the group's mutually exclusive levels; that level is the
answer and the other levels, which the caption therefore contradicts, are the distractors.
OPEN items pair topical questions with the caption's own sentences, so every answer is
supported by the caption by construction.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import yaml

GENERATOR_ID = "pathgen-offline-keyword-templates-v1"
_NEGATION = re.compile(r"\b(no|not|without|absence of|absent|lacks?|lacking|free of|devoid of)\b[^.]{0,25}$", re.I)


@dataclass(frozen=True)
class Level:
    name: str
    text: str
    patterns: tuple[re.Pattern, ...]


@dataclass(frozen=True)
class Group:
    name: str
    question: str
    levels: tuple[Level, ...]


@functools.lru_cache(maxsize=1)
def load_groups() -> tuple[Group, ...]:
    raw = yaml.safe_load(resources.files("pathgen").joinpath("prompts/instruct/attributes.yaml").read_text())
    groups = []
    for gname, g in raw["groups"].items():
        levels = tuple(Level(lname, lv["text"], tuple(re.compile(p, re.I) for p in lv["patterns"]))
                       for lname, lv in g["levels"].items())
        if len(levels) < 4:
            raise ValueError(f"attribute group {gname} needs >= 4 levels for 4-option questions")
        groups.append(Group(gname, g["question"], levels))
    return tuple(groups)


def _mentions(level: Level, text: str) -> bool:
    """True when a pattern matches and the match is not negated just before it."""
    for pat in level.patterns:
        for m in pat.finditer(text):
            if not _NEGATION.search(text[max(0, m.start() - 40):m.start()]):
                return True
    return False


def close_candidates(caption: str) -> list[dict]:
    """Every (question, correct, distractors) the caption grounds unambiguously."""
    out = []
    for group in load_groups():
        hits = [lv for lv in group.levels if _mentions(lv, caption)]
        if len(hits) != 1:
            continue
        correct = hits[0]
        distractors = [lv.text for lv in group.levels if lv is not correct][:3]
        out.append({"group": group.name, "question": group.question,
                    "correct": correct.text, "distractors": distractors})
    return out


_OPEN_TOPICS = [
    ("nuclei", re.compile(r"\bnucle|chromatin|pleomorph|mitos|mitot", re.I),
     "What can you tell about the nuclei in this image?"),
    ("architecture", re.compile(r"\bgland|nest|sheet|architect|pattern|lumen|lumina|trabecul|papill|cribriform|solid", re.I),
     "How is the tissue organised architecturally?"),
    ("background", re.compile(r"\bstroma|fibr|collagen|adipo|vacuol|necro|debris|inflamm|lymph", re.I),
     "What is seen in the surrounding tissue and background?"),
]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def open_turns(caption: str, max_turns: int = 3) -> list[tuple[str, str]]:
    """1–3 (question, answer) turns whose answers are sentences of the caption."""
    sentences = split_sentences(caption)
    if not sentences:
        return []
    turns = [("Describe the main histological features of this image.", caption.strip())]
    for _, pattern, question in _OPEN_TOPICS:
        if len(turns) >= max_turns:
            break
        picked = [s for s in sentences if pattern.search(s)]
        if picked and len(picked) < len(sentences):  # a focused answer, not the whole caption again
            turns.append((question, " ".join(picked)))
    return turns
