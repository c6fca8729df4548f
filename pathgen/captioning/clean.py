"""Model text -> plain prose: the one cleaning step for every agent text (describe, revise,
summarize) and for captions that come from outside.

Real VLM/LLM answers are not plain prose: thinking models open with a ``<think>…</think>``
reasoning block (or only close one, when the chat template opened it, or never close it when
the output was cut), chat models open with "Sure! Here's a concise caption:", and many answer in
markdown (``**Description:**``, ``### Findings:``, ``- `` bullets, numbered lists). This module
removes all of that, joins list items into sentences and collapses whitespace, so that
well-formed prose comes back unchanged, byte for byte. ``clean_model_text(clean_model_text(t))
== clean_model_text(t)``.
"""

from __future__ import annotations

import re

# -- reasoning blocks ---------------------------------------------------------------------------
_TAGS = r"think|thinking|reasoning|thought"
_BLOCK = re.compile(rf"<({_TAGS})>(.*?)</\1\s*>|◁think▷(.*?)◁/think▷", re.I | re.S)
_CLOSE = re.compile(rf"</(?:{_TAGS})\s*>|◁/think▷", re.I)  # a block opened by the chat template
_OPEN = re.compile(rf"<(?:{_TAGS})>|◁think▷", re.I)  # an unterminated block: the output was cut

# -- preambles, labels, chatter -----------------------------------------------------------------
_INTERJECTION = re.compile(r"^(?:sure|certainly|of course|absolutely|okay|ok|alright|great|"
                           r"no problem)\b\s*[!.,:;—–-]\s*", re.I)
_HAPPY = re.compile(r"^(?:i['’]?d be|i am|i['’]m) (?:happy|glad) to help\b[^.!?\n]*[.!?]\s*", re.I)
_HERE = r"(?:here\s+is|here\s+are|here['’]s|below\s+is|below\s+are|the\s+following\s+is)\b"
_HERE_COLON = re.compile(rf"^{_HERE}[^:\n]{{0,140}}:\s*", re.I)
_META = r"caption|description|summary|version|revision|rewrite|text|answer|response"
_HERE_SENTENCE = re.compile(rf"^{_HERE}[^.!?:\n]{{0,140}}\b(?:{_META})\b[^.!?:\n]{{0,80}}[.!]\s*",
                            re.I)
# Section labels that carry no content ("**Description:**", "Revised caption:", "### Findings").
_ADJ = (r"final|concise|short|brief|revised|corrected|updated|detailed|overall|general|main|key|"
        r"microscopic|histologic|histological|morphologic|morphological|image|patch|visual|"
        r"one-sentence|one sentence|pathology|pathological")
_NOUN = (r"captions?|descriptions?|summary|answer|response|output|text|findings|observations?|"
         r"overview|analysis|impression|interpretation|conclusion|features|details|assessment")
_GENERIC = re.compile(rf"^(?:(?:{_ADJ})\s+){{0,2}}(?:{_NOUN})$", re.I)
_OPENERS = set("the this these those there a an it its in at within on both here".split())
_CHATTER = re.compile(r"\s*(?:let me know|feel free to|i hope this|hope this helps|if you (?:need|"
                      r"have|would like|want)|please let me know)\b[^\n]*$", re.I)
_COUNT = re.compile(r"\s*\(\s*(?:\d+\s+(?:words?|tokens?)|(?:word|token)\s+count\s*:?\s*\d+)\s*\)"
                    r"\s*$", re.I)

# -- markdown -----------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*(?:```|~~~)")
_RULE = re.compile(r"^\s*([-*_=])(?:\s*\1){2,}\s*$")
_HEADING = re.compile(r"^\s*#{1,6}\s+(.*?)\s*#*\s*$")
_QUOTE_MARK = re.compile(r"^\s*(?:>\s?)+")
_BULLET = re.compile(r"^\s*(?:[-*+–](?=\s)|[•●▪◦‣·]|\(?\d{1,2}[.)](?=\s))\s*")
_EMPH_LABEL = re.compile(r"^(\*\*|__)\s*([^*_\n]{1,80}?)\s*(:?)\s*\1\s*(:?)\s*")
_EMPH_LINE = re.compile(r"^(\*\*|__)([^*_\n]{1,80}?)\1\s*:?$")
_PLAIN_LABEL = re.compile(r"^([A-Za-z][A-Za-z /&'-]{0,60}?)\s*:\s*")
_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"\1"), (re.compile(r"__(.+?)__"), r"\1"),
           (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
           (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
           (re.compile(r"`([^`\n]+)`"), r"\1"), (re.compile(r"\*\*|__"), "")]
_INLINE_BULLET = re.compile(r"\s+[•●▪]\s*")
_QUOTES = '"“”'


def clean_report(text: str | None) -> tuple[str, tuple[str, ...]]:
    """``(clean text, what was removed)``; the kinds, in this order when present:
    ``reasoning`` (a reasoning block with something in it), ``preamble`` ("Sure! Here is…:",
    "Caption:" and other labels, closing chatter), ``markdown`` (emphasis, headings, rules,
    fences, quotes) and ``list`` (list items joined into sentences)."""
    kinds: set[str] = set()
    text = _strip_reasoning(text or "", kinds)
    lines = _lines(text, kinds)
    out = " ".join(" ".join(lines).split())
    out = _strip_tail(out, kinds)
    out = _unquote(out, kinds)
    order = ("reasoning", "preamble", "markdown", "list")
    return out, tuple(k for k in order if k in kinds)


def clean_model_text(text: str | None) -> str:
    """``text`` as plain prose (see the module docstring); "" when nothing usable is left."""
    return clean_report(text)[0]


def unusable_reason(text: str | None) -> str | None:
    """None when ``text`` has usable prose; else the filters' reject reason: ``reasoning_only``
    (a reasoning block, closed or cut off, and no answer) or ``empty``."""
    out, kinds = clean_report(text)
    if out:
        return None
    return "reasoning_only" if "reasoning" in kinds else "empty"


def clean_field(rec: dict, field: str, text: str | None) -> str:
    """Clean ``text``, an agent's output for ``rec[field]`` (the caller stores the result).
    What was removed goes to ``rec['provenance']['cleaned'][field]``; when nothing usable is
    left, the raw text is kept in ``rec['raw'][field]`` for inspection (raw texts with an
    answer are not kept: a reasoning block can be thousands of tokens)."""
    out, kinds = clean_report(text)
    if kinds:
        rec.setdefault("provenance", {}).setdefault("cleaned", {})[field] = list(kinds)
    if not out and (text or "").strip():
        rec.setdefault("raw", {}).setdefault(field, text)
    return out


# -- steps --------------------------------------------------------------------------------------
def _strip_reasoning(text: str, kinds: set) -> str:
    def drop(m: re.Match) -> str:
        if (m.group(2) or m.group(3) or "").strip():
            kinds.add("reasoning")
        return "\n"

    text = _BLOCK.sub(drop, text)
    closes = list(_CLOSE.finditer(text))
    if closes:  # "<reasoning></think> answer": the template opened the block
        if text[:closes[-1].start()].strip():
            kinds.add("reasoning")
        text = text[closes[-1].end():]
    m = _OPEN.search(text)
    if m:  # "<think> reasoning…" cut off before it closed
        if text[m.end():].strip():
            kinds.add("reasoning")
        text = text[:m.start()]
    return text


def _sentence(s: str) -> str:
    """A list item or a heading kept as a sentence: capitalised, ending in a full stop."""
    s = s.strip()
    if s and s[0].islower():
        s = s[0].upper() + s[1:]
    if s and s[-1] in ",;:":
        s = s[:-1].rstrip()
    if s and s[-1] not in ".!?":
        s += "."
    return s


def _lower_first(s: str) -> str:
    w = s.split(" ", 1)[0]
    if len(w) > 1 and w[0].isupper() and w[1:].islower():
        return s[0].lower() + s[1:]
    return s


def _drop_label(line: str, kinds: set) -> str:
    """A leading "**Label:**" / "Label:" of a line: dropped when it is a section label or
    the rest is a whole sentence; otherwise kept as plain "Label: rest"."""
    m = _EMPH_LABEL.match(line)
    if m and (m.group(3) or m.group(4)) and line[m.end():].strip():
        kinds.add("markdown")
        label, rest = m.group(2).strip(), line[m.end():]
        first = rest.split(" ", 1)[0].lower()
        if _GENERIC.match(label) or first in _OPENERS:
            kinds.add("preamble")
            return rest
        return f"{label}: {_lower_first(rest)}"
    m = _PLAIN_LABEL.match(line)
    if m and _GENERIC.match(m.group(1).strip()):
        kinds.add("preamble")
        return line[m.end():]
    return line


def _preamble(line: str, kinds: set) -> str:
    """Chat openers at the start of the answer: "Sure!", "Here is a concise caption:"."""
    while True:
        new = _HAPPY.sub("", _INTERJECTION.sub("", line))
        new = _HERE_SENTENCE.sub("", _HERE_COLON.sub("", new))
        if new == line:
            return line
        kinds.add("preamble")
        line = new


def _lines(text: str, kinds: set) -> list[str]:
    """Markdown lines -> prose pieces in order (list items and kept headings as sentences)."""
    if _INLINE_BULLET.search(text):
        text = _INLINE_BULLET.sub("\n• ", text)
    raw_lines = text.splitlines()
    out: list[str] = []
    started = False  # content seen (preambles only come before it)
    for raw in raw_lines:
        line = raw.strip()
        if _FENCE.match(line):  # a fence line (the answer inside is kept)
            kinds.add("markdown")
            continue
        if not line:
            continue
        if _RULE.match(line):
            kinds.add("markdown")
            continue
        q = _QUOTE_MARK.match(line)
        if q:
            line = line[q.end():]
            kinds.add("markdown")
        if not started:
            line = _preamble(line, kinds)
            if not line.strip():
                continue
        heading = _HEADING.match(line)
        emph_line = _EMPH_LINE.match(line)
        if heading or emph_line:  # a heading: a section label, or (when long) a sentence
            kinds.add("markdown")
            body = _inline(heading.group(1) if heading else emph_line.group(2)).strip()
            body = body.rstrip(":").strip()
            if len(body.split()) <= 6 or _GENERIC.match(body):
                continue
            out.append(_sentence(body))
            started = True
            continue
        b = _BULLET.match(line)
        is_item = bool(b) and bool(line[b.end():].strip())
        if b:
            kinds.add("list")
            line = line[b.end():]
        line = _drop_label(line.strip(), kinds)
        new = _inline(line)
        if new != line:
            kinds.add("markdown")
        line = new.strip()
        if not started:
            line = _preamble(line, kinds).strip()
        if not line:
            continue
        if line.endswith(":") and (len(line.split()) <= 4 or _GENERIC.match(line[:-1].strip())):
            kinds.add("preamble")  # a label line ("Key features:"), a list item's too
            continue
        if is_item or line.endswith(":"):  # an item, or the sentence that introduces a list
            out.append(_sentence(line))
        else:
            out.append(line)
        started = True
    return out


def _inline(s: str) -> str:
    for rx, rep in _INLINE:
        s = rx.sub(rep, s)
    return s


def _strip_tail(text: str, kinds: set) -> str:
    """Closing chatter ("Let me know if…", "(42 words)")."""
    while True:
        new = _COUNT.sub("", text)
        m = _CHATTER.search(new)
        if m and m.start() > 0 and new[:m.start()].rstrip()[-1:] in ".!?":
            new = new[:m.start()]
        elif m and m.start() == 0:
            new = ""
        new = new.rstrip()
        if new == text:
            return text
        kinds.add("preamble")
        text = new


def _unquote(text: str, kinds: set) -> str:
    """Quotes around the whole answer (or one unmatched quote at either end)."""
    n = sum(text.count(q) for q in _QUOTES)
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES and n == 2:
        text = text[1:-1].strip()
    elif text[:1] in _QUOTES and n % 2:
        text = text[1:].strip()
    elif text[-1:] in _QUOTES and n % 2:
        text = text[:-1].strip()
    else:
        return text
    kinds.add("markdown")
    return text
