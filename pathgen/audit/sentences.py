"""Split a caption into the sentences a reviewer judges one by one.

A boundary is sentence-final punctuation (``.``, ``!``, ``?``, possibly closed by a quote or
bracket) followed by white space, or a line break; it is not a boundary after a known
abbreviation (``e.g.``, ``approx.``, ``vs.`` ...) or when the next word starts in lower case
(``ca. 20 µm`` or ``H&E-stained, i.e. eosin``), and numbers such as ``2.5 µm`` never split.
The split is stored in the audit manifest, so the page and the scores always agree on what
sentence *i* is, whatever this function becomes later.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset({
    "e.g.", "i.e.", "eg.", "ie.", "etc.", "vs.", "cf.", "ca.", "approx.", "appr.", "approx",
    "al.", "fig.", "figs.", "no.", "nos.", "dr.", "st.", "mr.", "ms.", "mrs.", "resp.", "incl.",
    "max.", "min.", "avg.", "est.", "diam.", "sp.", "spp.", "var.", "viz.", "inc.",
})
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+|\s*\n\s*")


def _last_word(text: str) -> str:
    words = text.split()
    return words[-1] if words else ""


def split_sentences(text: str | None) -> list[str]:
    """The sentences of ``text`` (stripped, in order; [] for empty text)."""
    text = str(text or "").strip()
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if "\n" not in m.group():
            head = text[start:m.start() + len(m.group().rstrip())]
            nxt = text[m.end():m.end() + 1]
            word = _last_word(head).strip("\"'”’)]")
            initial = len(word) == 2 and word[0].isupper() and word[1] == "."  # "A. Smith"
            if word.lower() in ABBREVIATIONS or initial or (nxt and nxt.islower()):
                continue
        piece = text[start:m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out
