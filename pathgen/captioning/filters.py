"""Automatic caption quality filters (PathGen-1.6M had none). Each returns a reason code;
a caption is accepted when no filter fires. Pure text functions except the optional
image-text alignment check (a reference CLIP; see :func:`alignment_scores`).
"""

from __future__ import annotations

import re
from collections import Counter

from .budget import TokenBudget
from .clean import clean_field, clean_model_text, unusable_reason

REASONS = ("failed", "empty", "reasoning_only", "too_short", "over_budget", "refusal",
           "non_english", "repeated_ngrams", "contradicts_revision", "low_alignment")

_REFUSAL = [r"\bas an ai\b", r"\bas a (large )?language model\b", r"\bi('m| am) (sorry|unable)\b",
            r"\bi (can ?not|can't|cannot) (help|assist|provide|determine|see|view|analy[sz]e)\b",
            r"\bunable to (view|see|analy[sz]e|process) (the |this )?image\b",
            r"\bno image (was|is) (provided|attached)\b", r"\bconsult a (medical )?professional\b"]
# Frequent English function words: real English prose has plenty of them; garbage has none.
_FUNCTION_WORDS = set("""a an the of and or with in on at by for from to is are was were be been
this that these those there its it as into within between without which while than per
some many few no not also show shows showing seen present""".split())
_ALLOWED_NON_ASCII = set("µ²³±×°–—‘’“”·")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_STOP = _FUNCTION_WORDS | set("nuclei nucleus cells cell tissue".split())


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def is_refusal(text: str, extra: list[str] = ()) -> bool:
    low = text.lower()
    return any(re.search(p, low) for p in list(_REFUSAL) + list(extra))


def non_english(text: str, max_non_ascii: float, min_function: float) -> bool:
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return False
    odd = sum(1 for c in chars if (ord(c) > 127 and c not in _ALLOWED_NON_ASCII) or
              (not c.isprintable()))
    if odd / len(chars) > max_non_ascii:
        return True
    letters = sum(c.isalpha() for c in chars)
    if letters / len(chars) < 0.6:  # digits/punctuation soup
        return True
    w = words(text)
    return len(w) >= 6 and sum(x in _FUNCTION_WORDS for x in w) / len(w) < min_function


# Multi-word terms that differential wording legitimately repeats ("clear cell renal cell
# carcinoma ... papillary renal cell carcinoma ... chromophobe renal cell carcinoma"): each is
# read as one word by the n-gram rule. Longest first, so "ductal carcinoma in situ" wins.
MEDICAL_TERMS = sorted("""
renal cell carcinoma|clear cell|squamous cell carcinoma|basal cell carcinoma|small cell carcinoma
|large cell carcinoma|transitional cell carcinoma|urothelial carcinoma|hepatocellular carcinoma
|ductal carcinoma in situ|lobular carcinoma in situ|carcinoma in situ|no special type
|invasive ductal carcinoma|invasive lobular carcinoma|signet ring cell|signet ring cells
|hematoxylin and eosin|haematoxylin and eosin|nuclear to cytoplasmic ratio|nuclear cytoplasmic ratio
|high grade|low grade|lymph node|lymph nodes|germinal center|germinal centre|mitotic figures
|mitotic figure|nuclear pleomorphism|tumor infiltrating lymphocytes|spindle cells|spindle cell
|plasma cells|giant cells|multinucleated giant cells|foam cells|goblet cells|red blood cells
|smooth muscle|fibrous stroma|desmoplastic stroma|tumor cells|tumour cells|tumor nests
|glandular structures|gland formation|papillary structures|solid sheets|nuclear atypia
|prominent nucleoli|vesicular chromatin|eosinophilic cytoplasm|clear cytoplasm|cell borders
|basement membrane|lamina propria|muscularis propria|stratified squamous epithelium
|keratin pearls|necrotic debris|comedo necrosis|lymphovascular invasion|perineural invasion
""".replace("\n", "").split("|"), key=lambda t: -len(t.split()))
_TERM_RX = re.compile(r"\b(" + "|".join(re.escape(t.strip()) for t in MEDICAL_TERMS) + r")\b", re.I)


def term_words(text: str) -> list[str]:
    """``words`` with each multi-word medical term joined into one token."""
    joined = _TERM_RX.sub(lambda m: "#".join(m.group(0).lower().split()), text)
    return [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'#-]*", joined)]


def _tandem(w: list, max_repeats: int, longest: int = 6) -> bool:
    """A span of 1..``longest`` tokens repeated back to back more than ``max_repeats`` times
    (a generation loop: "tumor cells tumor cells tumor cells")."""
    for k in range(1, longest + 1):
        for i in range(len(w) - k * (max_repeats + 1) + 1):
            span = w[i:i + k]
            if all(w[i + j * k:i + (j + 1) * k] == span for j in range(1, max_repeats + 1)):
                return True
    return False


def repeated_ngrams(text: str, n: int, max_repeats: int) -> bool:
    """Degenerate repetition: an n-gram of running prose (one with a function word in it) seen
    more than ``max_repeats`` times, or a back-to-back loop. Multi-word medical terms count as
    one token and content-word-only n-grams (noun phrases such as a diagnosis named in a
    differential) are not repetition."""
    w = term_words(text)
    if _tandem(w, max_repeats):
        return True
    grams = Counter(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    return any(c > max_repeats and any(x in _FUNCTION_WORDS for x in g) for g, c in grams.items())


def _stem(word: str) -> str:
    for suf in ("ies", "es", "s"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            return word[: -len(suf)]
    return word


def removed_terms(describe: str, revise: str) -> set[str]:
    """Content words of the description that the revise step took out."""
    before = {_stem(w) for w in words(describe) if len(w) >= 4 and w not in _STOP}
    after = {_stem(w) for w in words(revise)}
    return before - after


def contradicts_revision(caption: str, describe: str, revise: str) -> bool:
    removed = removed_terms(describe, revise)
    return bool(removed & {_stem(w) for w in words(caption)})


def nothing_usable(rec: dict) -> str:
    """Why an ok record has no caption: ``reasoning_only`` when the first agent text with
    nothing usable in it (describe, revise, then the caption) was a reasoning block and no
    answer, else ``empty``. Raw texts kept by ``clean.clean_field`` are read first."""
    raw = rec.get("raw") or {}
    for field in ("describe", "revise", "caption"):
        text = raw.get(field, rec.get(field))
        if text is None and field != "caption":
            continue  # a caption that came from outside has no agent texts
        why = unusable_reason(text)
        if why:
            return why
    return "empty"


def clean_record(rec: dict, budget: TokenBudget | None = None) -> None:
    """Agent texts and caption as plain prose, in place (records cached before the cleaning
    step, captions from outside); ``n_tokens`` recounted when the caption changed."""
    for field in ("describe", "revise", "caption"):
        text = rec.get(field)
        if not isinstance(text, str):
            continue
        new = clean_field(rec, field, text)
        if new == text:
            continue
        rec[field] = new
        if field == "caption" and budget is not None and rec.get("status") == "ok":
            rec["n_tokens"] = budget.count(new) if new else 0


def text_reasons(rec: dict, fcfg, budget: TokenBudget) -> list[str]:
    """All text-only reasons for one record (``fcfg``: FiltersConfig). Texts are judged as
    plain prose (``clean.clean_model_text``), whether or not the record was cleaned."""
    if rec.get("status") != "ok":
        return ["failed"]
    cap = clean_model_text(rec.get("caption"))
    if not cap:
        return [nothing_usable(rec)]
    revise = clean_model_text(rec.get("revise"))
    out = []
    if len(words(cap)) < fcfg.min_words:
        out.append("too_short")
    truncated = (rec.get("provenance") or {}).get("truncated")
    if budget.count(cap) > budget.max_tokens or (truncated and fcfg.over_budget == "reject"):
        out.append("over_budget")
    if is_refusal(cap, fcfg.extra_refusal_patterns) or is_refusal(revise,
                                                                  fcfg.extra_refusal_patterns):
        out.append("refusal")
    if non_english(cap, fcfg.max_non_ascii_fraction, fcfg.min_english_fraction):
        out.append("non_english")
    if repeated_ngrams(cap, fcfg.ngram, fcfg.max_ngram_repeats):
        out.append("repeated_ngrams")
    if fcfg.check_revision and contradicts_revision(cap, clean_model_text(rec.get("describe")),
                                                    revise):
        out.append("contradicts_revision")
    return out


def alignment_scores(image_paths, captions, encoder_name: str, spec=None, batch_size: int = 32):
    """Cosine similarity of each (image, caption) under a reference CLIP loaded with
    ``pathgen.encoders.load_encoder`` (L2-normalised embeddings). ``spec``: the encoder's
    resolved ``EncoderSpec`` (None: ``encoder_name`` is a built-in)."""
    import torch
    from PIL import Image

    from pathgen.encoders import load_encoder

    enc = load_encoder(spec or encoder_name, device="cpu", name=encoder_name)
    out: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(captions), batch_size):
            imgs = []
            for p in image_paths[i:i + batch_size]:
                with Image.open(p) as im:
                    imgs.append(enc.preprocess(im.convert("RGB")))
            a = enc.encode_images(torch.stack(imgs))
            b = enc.encode_texts(list(captions[i:i + batch_size]))
            out.extend((a * b).sum(-1).float().tolist())
    return out


def fit_budget(rec: dict, fcfg, budget: TokenBudget) -> None:
    """An ok caption over the budget (imported, or from a model that overran), with
    ``over_budget: truncate``: cut at a sentence boundary (clause, then word, if the first
    sentence alone is too long) and record it in provenance. In place."""
    cap = rec.get("caption") or ""
    if rec.get("status") != "ok" or fcfg.over_budget != "truncate" or not cap.strip():
        return
    n = budget.count(cap)
    if n <= budget.max_tokens:
        return
    rec["caption"] = budget.truncate(cap)
    rec["n_tokens"] = budget.count(rec["caption"]) if rec["caption"] else 0
    prov = rec.setdefault("provenance", {})
    prov.update(truncated=True, tokens_before_truncation=max(n, prov.get("tokens_before_truncation") or 0))


def apply_filters(records: list[dict], fcfg, budget: TokenBudget, image_paths=None,
                  alignment_spec=None) -> None:
    """Set ``accepted`` and ``reject_reasons`` on every record in place (texts are first
    cleaned to plain prose, :func:`clean_record`, and over-budget captions truncated, unless
    ``filters.over_budget`` is 'reject'). ``alignment_spec``: the resolved ``EncoderSpec`` of
    ``fcfg.alignment_encoder`` (None: a built-in name)."""
    for rec in records:
        clean_record(rec, budget)
        fit_budget(rec, fcfg, budget)
        rec["reject_reasons"] = text_reasons(rec, fcfg, budget)
    if fcfg.alignment_encoder and image_paths is not None:
        idx = [i for i, r in enumerate(records) if r["status"] == "ok" and r.get("caption")]
        if idx:
            scores = alignment_scores([image_paths[i] for i in idx],
                                      [records[i]["caption"] for i in idx],
                                      fcfg.alignment_encoder, alignment_spec)
            for i, s in zip(idx, scores):
                records[i].setdefault("provenance", {})["alignment"] = round(s, 4)
                if s < fcfg.min_alignment:
                    records[i]["reject_reasons"].append("low_alignment")
    for rec in records:
        rec["accepted"] = not rec["reject_reasons"]
