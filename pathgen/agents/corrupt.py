"""Rule-based corrupter (not a language model): one controlled edit of a description over the
vocabulary in :mod:`pathgen.agents.vocab`. The revise agent learns to undo it.

  * add     - insert a sentence stating a feature the description does not mention;
  * delete  - drop one sentence that states a mentioned feature;
  * modify  - replace one cell type / density / arrangement / staining term by another of
              its swap group (``dense`` -> ``sparse``, ``glands`` -> ``nests``).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field

from .vocab import ADD_FEATURES, SWAP_GROUPS

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Corruption:
    text: str
    kind: str                       # add | delete | modify
    attribute: str | None           # modify: cell type | density | arrangement | staining
    detail: dict = field(default_factory=dict)
    corrupter: str = "rules"

    def meta(self) -> dict:
        return {"kind": self.kind, "attribute": self.attribute, "corrupter": self.corrupter,
                **self.detail}


def record_rng(seed: int, key: str) -> random.Random:
    """An RNG per record, independent of record order (adding slides keeps old edits)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _terms() -> list[tuple[str, str, list[str]]]:
    """(term, attribute, its group), longest first so 'plasma cells' wins over 'cells'."""
    out = [(t, attr, g) for attr, groups in SWAP_GROUPS.items() for g in groups for t in g]
    return sorted(out, key=lambda x: -len(x[0]))


_TERMS = _terms()


def term_hits(text: str) -> list[tuple[int, int, str, list[str]]]:
    """Non-overlapping vocabulary terms in ``text``: (start, end, attribute, group)."""
    hits, taken = [], set()
    for term, attr, group in _TERMS:
        for m in re.finditer(rf"\b{re.escape(term)}\b", text, flags=re.I):
            span = set(range(m.start(), m.end()))
            if span & taken:
                continue
            taken |= span
            hits.append((m.start(), m.end(), attr, group))
    return sorted(hits)


def _match_case(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def corrupt_modify(text: str, rng: random.Random, attributes: list[str] | None = None) -> Corruption | None:
    hits = [h for h in term_hits(text) if attributes is None or h[2] in attributes]
    if not hits:
        return None
    start, end, attr, group = rng.choice(hits)
    old = text[start:end]
    new = _match_case(rng.choice([t for t in group if t.lower() != old.lower()]), old)
    return Corruption(text[:start] + new + text[end:], "modify", attr, {"from": old, "to": new})


def _mentioned(text: str) -> set[str]:
    return {name for name, (pat, _) in ADD_FEATURES.items() if re.search(pat, text, flags=re.I)}


def corrupt_add(text: str, rng: random.Random) -> Corruption | None:
    absent = sorted(set(ADD_FEATURES) - _mentioned(text))
    if not absent:
        return None
    feature = rng.choice(absent)
    sent = sentences(text)
    at = rng.randint(1, len(sent)) if len(sent) > 1 else 1
    new = " ".join(sent[:at] + [ADD_FEATURES[feature][1]] + sent[at:])
    return Corruption(new, "add", None, {"feature": feature, "sentence": ADD_FEATURES[feature][1]})


def corrupt_delete(text: str, rng: random.Random) -> Corruption | None:
    sent = sentences(text)
    if len(sent) < 2:
        return None
    stating = [i for i, s in enumerate(sent) if term_hits(s) or _mentioned(s)]
    if not stating:
        return None
    i = rng.choice(stating)
    return Corruption(" ".join(sent[:i] + sent[i + 1:]), "delete", None, {"sentence": sent[i]})


def corrupt(text: str, kinds: list[str], rng: random.Random) -> Corruption | None:
    """One edit: a kind drawn from ``kinds``, falling back to the others when it does not
    apply (no vocabulary term to modify, a one-sentence text to delete from); None if none do."""
    first = rng.choice(kinds)
    for kind in [first] + [k for k in kinds if k != first]:
        edit = {"add": corrupt_add, "delete": corrupt_delete, "modify": corrupt_modify}[kind](text, rng)
        if edit is not None and edit.text.strip() != text.strip():
            return edit
    return None
