"""`pathgen audit score`: accuracy of the audited captions, with Wilson 95 % intervals,
agreement between reviewers, and what the revise step fixed or introduced.

Definitions (docs/dataset.md "Auditing captions"):

- A sentence verdict is ``correct``, ``wrong``, ``not_visible`` (the sentence claims what the
  patch does not show) or ``cant_tell``. **Sentence accuracy** = correct / (correct + wrong +
  not visible): a claim the patch does not support counts as an error; ``cant_tell`` is left
  out (the reviewer could not judge it).
- A **caption** is correct when every one of its sentences is ``correct``, has an error when
  any sentence is ``wrong`` or ``not_visible``, and is undetermined otherwise (a sentence
  unjudged or ``cant_tell``, none wrong); **caption accuracy** = correct / (correct + with an
  error).
- Accuracies are given for all reviewers pooled (every reviewer's judgement of a unit counts
  once: with several reviewers the interval is narrower than the items alone warrant) and per
  reviewer, overall and per stratum. The ``population_weighted`` estimate weights each
  stratum's accuracy by its share of the dataset's pairs (the sample's allocation may not).
- Wilson score interval: ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``, z = 1.96.
- **Agreement**: Cohen's kappa (scikit-learn) for every pair of reviewers, on the final
  caption's sentences both judged (four categories) and on the captions both determined
  (correct / with an error); null when undefined (fewer than two units, or one category).
- **Describe vs revise** (needs verdicts on the optional describe and revise sentences of the
  same item by the same reviewer): describe and revise sentences are paired one to one, most
  similar first (difflib ratio of their lower-cased words, punctuation dropped, ≥ ``MATCH_RATIO``); an unpaired
  describe sentence was *removed* by revision, an unpaired revise sentence is *new*. An error
  (wrong / not visible) in describe is **fixed** when revision removed its sentence or its
  paired revise sentence is correct; an error in revise is **introduced** when its sentence is
  new or its paired describe sentence was correct; **kept** when both are errors. Pairs with
  ``cant_tell`` or an unjudged side are not counted. Without any verdicts, ``revision_text``
  still counts what the revise step kept, edited, removed and added (text only).
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections import Counter
from pathlib import Path
from statistics import NormalDist

from ..atomic import write_json, write_text
from .files import score_files
from .sample import load_manifest
from .verdicts import VERDICT_LABELS, VERDICTS, current_entries, read_all

Z95 = NormalDist().inv_cdf(0.975)
ERRORS = ("wrong", "not_visible")
MATCH_RATIO = 0.6
ALL = "all"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of k successes in n trials ((None, None) for n = 0)."""
    if n <= 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "accuracy": (k / n) if n else None, "ci_low": lo, "ci_high": hi}


def _sentence_stats(verdicts: list[str]) -> dict:
    counts = Counter(verdicts)
    judged = sum(counts[v] for v in ("correct", *ERRORS))
    return {"sentences": len(verdicts), "counts": {v: counts[v] for v in VERDICTS},
            **proportion(counts["correct"], judged)}


def caption_status(n_sentences: int, given: dict) -> str:
    """correct | error | undetermined (module docstring)."""
    values = [given.get(str(i)) for i in range(n_sentences)]
    if any(v in ERRORS for v in values):
        return "error"
    if n_sentences and all(v == "correct" for v in values):
        return "correct"
    return "undetermined"


def _caption_stats(statuses: list[str]) -> dict:
    c = Counter(statuses)
    return {"captions": len(statuses), "correct": c["correct"], "with_error": c["error"],
            "undetermined": c["undetermined"], **proportion(c["correct"], c["correct"] + c["error"])}


def match_sentences(a: list[str], b: list[str], ratio: float = MATCH_RATIO) -> dict[int, int]:
    """One-to-one pairs {index in a: index in b}, most similar first, similarity >= ratio."""
    words_a = [re.findall(r"\w+", s.lower()) for s in a]
    words_b = [re.findall(r"\w+", s.lower()) for s in b]
    scored = []
    for i, wa in enumerate(words_a):
        for j, wb in enumerate(words_b):
            r = difflib.SequenceMatcher(None, wa, wb, autojunk=False).ratio()
            if r >= ratio:
                scored.append((-r, i, j))
    pairs, used = {}, set()
    for _, i, j in sorted(scored):
        if i not in pairs and j not in used:
            pairs[i] = j
            used.add(j)
    return pairs


def revision_text(items: list[dict]) -> dict:
    """What the revise step did to the describe sentences (no verdicts needed)."""
    c = Counter()
    for it in items:
        d, r = it["sentences"].get("describe") or [], it["sentences"].get("revise") or []
        if not d or not r:
            continue
        pairs = match_sentences(d, r)
        c["items"] += 1
        c["describe_sentences"] += len(d)
        c["revise_sentences"] += len(r)
        c["kept"] += sum(d[i].strip() == r[j].strip() for i, j in pairs.items())
        c["edited"] += sum(d[i].strip() != r[j].strip() for i, j in pairs.items())
        c["removed"] += len(d) - len(pairs)
        c["added"] += len(r) - len(pairs)
    keys = ("items", "describe_sentences", "revise_sentences", "kept", "edited", "removed", "added")
    return {k: c[k] for k in keys}


def _judged(v) -> bool:
    return v in ("correct", *ERRORS)


def revision_effect(item: dict, entry: dict) -> Counter:
    """Counts of fixed / introduced / kept errors of one reviewer on one item (docstring)."""
    d, r = item["sentences"].get("describe") or [], item["sentences"].get("revise") or []
    vd, vr = entry.get("describe") or {}, entry.get("revise") or {}
    c = Counter()
    if not d or not r or not vd or not vr:
        return c
    c["items"] += 1
    pairs = match_sentences(d, r)
    paired_r = set(pairs.values())
    for i in range(len(d)):
        a = vd.get(str(i))
        if not _judged(a):
            continue
        c["describe_judged"] += 1
        c["describe_errors"] += a in ERRORS
        if i not in pairs:
            c["fixed_removed" if a in ERRORS else "correct_removed"] += 1
            continue
        b = vr.get(str(pairs[i]))
        if not _judged(b):
            continue
        if a in ERRORS:
            c["kept_error" if b in ERRORS else "fixed_edited"] += 1
        elif b in ERRORS:
            c["introduced_edited"] += 1
    for j in range(len(r)):
        b = vr.get(str(j))
        if not _judged(b):
            continue
        c["revise_judged"] += 1
        c["revise_errors"] += b in ERRORS
        if j not in paired_r and b in ERRORS:
            c["introduced_new"] += 1
    return c


REVISION_KEYS = ("items", "describe_judged", "describe_errors", "revise_judged", "revise_errors",
                 "fixed_removed", "fixed_edited", "kept_error", "introduced_edited", "introduced_new",
                 "correct_removed")


def _revision_summary(c: Counter) -> dict:
    out = {k: c[k] for k in REVISION_KEYS}
    out["fixed"] = c["fixed_removed"] + c["fixed_edited"]
    out["introduced"] = c["introduced_edited"] + c["introduced_new"]
    out["net_fixed"] = out["fixed"] - out["introduced"]
    out["describe_accuracy"] = proportion(c["describe_judged"] - c["describe_errors"], c["describe_judged"])
    out["revise_accuracy"] = proportion(c["revise_judged"] - c["revise_errors"], c["revise_judged"])
    return out


def _kappa(a: list[str], b: list[str], labels: list[str]) -> dict:
    out = {"n": len(a), "kappa": None,
           "observed_agreement": (sum(x == y for x, y in zip(a, b)) / len(a)) if a else None}
    if len(a) >= 2 and len(set(a) | set(b)) >= 2:
        from sklearn.metrics import cohen_kappa_score

        k = float(cohen_kappa_score(a, b, labels=labels))
        out["kappa"] = None if math.isnan(k) else k
    return out


def score_audit(audit_dir: str | Path) -> dict:
    """Score an audit folder (module docstring); returns the result (see write_score)."""
    manifest = load_manifest(audit_dir)
    items = {i["id"]: i for i in manifest["items"]}
    files = read_all(audit_dir)
    reviewers = [f["reviewer"] for f in files]
    entries = {f["reviewer"]: current_entries(f, items) for f in files}
    stale = {f["reviewer"]: len(f["items"]) - len(entries[f["reviewer"]]) for f in files}
    strata = sorted({i.get("stratum") or "" for i in items.values()})
    scopes = [(ALL, None)] + [("stratum", s) for s in strata]
    who = [ALL] + (reviewers if len(reviewers) > 1 else [])

    sent_rows, cap_rows = [], []
    for scope, stratum in scopes:
        for r in who:
            verdicts, statuses = [], []
            for name in reviewers if r == ALL else [r]:
                for item_id, entry in entries[name].items():
                    it = items[item_id]
                    if stratum is not None and it.get("stratum") != stratum:
                        continue
                    given = entry.get("caption") or {}
                    n = len(it["sentences"].get("caption") or [])
                    verdicts += [given[str(i)] for i in range(n) if str(i) in given]
                    if given:
                        statuses.append(caption_status(n, given))
            head = {"scope": scope, "stratum": stratum, "reviewer": r}
            sent_rows.append({**head, **_sentence_stats(verdicts)})
            cap_rows.append({**head, **_caption_stats(statuses)})

    population = sum((manifest.get("strata") or {}).get(s, {}).get("population", 0) for s in strata)

    def weighted(rows: list[dict]) -> float | None:
        parts = [((manifest.get("strata") or {}).get(row["stratum"], {}).get("population", 0), row["accuracy"])
                 for row in rows if row["scope"] == "stratum" and row["reviewer"] == ALL]
        parts = [(w, a) for w, a in parts if a is not None and w]
        total = sum(w for w, _ in parts)
        return sum(w * a for w, a in parts) / total if total and population else None

    agreement = []
    for a, b in itertools.combinations(reviewers, 2):
        sa, sb, ca, cb = [], [], [], []
        for item_id in sorted(set(entries[a]) & set(entries[b])):
            ga, gb = entries[a][item_id].get("caption") or {}, entries[b][item_id].get("caption") or {}
            for i in sorted(set(ga) & set(gb), key=int):
                sa.append(ga[i])
                sb.append(gb[i])
            n = len(items[item_id]["sentences"].get("caption") or [])
            xa, xb = caption_status(n, ga), caption_status(n, gb)
            if "undetermined" not in (xa, xb):
                ca.append(xa)
                cb.append(xb)
        agreement.append({"reviewers": [a, b], "sentence": _kappa(sa, sb, list(VERDICTS)),
                          "caption": _kappa(ca, cb, ["correct", "error"])})

    rev_rows = []
    for r in who:
        c = Counter()
        for name in reviewers if r == ALL else [r]:
            for item_id, entry in entries[name].items():
                c.update(revision_effect(items[item_id], entry))
        rev_rows.append({"reviewer": r, **_revision_summary(c)})

    corrected = {name: sum(bool(e.get("corrected")) for e in entries[name].values()) for name in reviewers}
    return {"audit": str(Path(audit_dir)), "n_items": len(items), "stratify": manifest.get("stratify"),
            "caption_stage": manifest.get("caption_stage"), "reviewers": reviewers,
            "stale_entries": {k: v for k, v in stale.items() if v},
            "items_judged": {name: sum(bool(e.get("caption")) for e in entries[name].values())
                             for name in reviewers},
            "sentence_accuracy": sent_rows, "caption_accuracy": cap_rows,
            "population_weighted": {"sentence": weighted(sent_rows), "caption": weighted(cap_rows)},
            "agreement": agreement, "revision": rev_rows,
            "revision_text": revision_text(list(items.values())), "corrected_captions": corrected,
            "definitions": {"sentence_accuracy": "correct / (correct + wrong + not visible); can't tell excluded",
                            "caption_accuracy": "correct (all sentences correct) / (correct + with an error)",
                            "interval": "Wilson score, 95 %", "kappa": "Cohen's kappa (scikit-learn)",
                            "match_ratio": MATCH_RATIO}}


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _pct(row: dict) -> str:
    if row["accuracy"] is None:
        return "–"
    return f"{100 * row['accuracy']:.1f} % [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def _scope(row: dict) -> str:
    return "overall" if row["scope"] == ALL else f"{row['stratum'] or '(none)'}"


def score_markdown(res: dict) -> str:
    lines = [f"# Caption audit: {_cell(res['audit'])}", "",
             f"{res['n_items']} items, stratified by `{_cell(res['stratify'])}`; caption text: "
             f"`{_cell(res['caption_stage'])}`; reviewers: "
             f"{', '.join(_cell(r) for r in res['reviewers']) or '(none yet)'}.", ""]
    if not res["reviewers"]:
        lines += ["No verdicts yet: review with `pathgen audit serve`.", ""]
    lines += ["## Sentence-level accuracy (final caption)", "",
              "Accuracy = correct / (correct + wrong + not visible), Wilson 95 % interval.", ""]
    lines += _table(["stratum", "reviewer", "sentences", "correct", "wrong", "not visible", "can't tell",
                     "accuracy [95 % CI]"],
                    [[_scope(r), r["reviewer"], r["sentences"], *(r["counts"][v] for v in VERDICTS), _pct(r)]
                     for r in res["sentence_accuracy"]])
    lines += ["## Caption-level accuracy", "",
              "A caption is correct when all its sentences are correct; undetermined captions "
              "(unjudged or can't-tell sentences, no error) are left out.", ""]
    lines += _table(["stratum", "reviewer", "captions", "correct", "with an error", "undetermined",
                     "accuracy [95 % CI]"],
                    [[_scope(r), r["reviewer"], r["captions"], r["correct"], r["with_error"],
                      r["undetermined"], _pct(r)] for r in res["caption_accuracy"]])
    pw = res["population_weighted"]
    if pw["sentence"] is not None or pw["caption"] is not None:
        lines += [f"Population-weighted over strata: sentence accuracy {_cell(pw['sentence'])}, "
                  f"caption accuracy {_cell(pw['caption'])}.", ""]
    if res["agreement"]:
        lines += ["## Agreement between reviewers (Cohen's kappa)", ""]
        lines += _table(["reviewers", "sentences both judged", "kappa", "observed agreement",
                         "captions both determined", "kappa", "observed agreement"],
                        [[" / ".join(a["reviewers"]), a["sentence"]["n"], a["sentence"]["kappa"],
                          a["sentence"]["observed_agreement"], a["caption"]["n"], a["caption"]["kappa"],
                          a["caption"]["observed_agreement"]] for a in res["agreement"]])
    lines += ["## Describe vs revise", "",
              "From verdicts on the describe and revise sentences of one item by one reviewer: an "
              "error in describe is fixed when revision removed its sentence or its revised "
              "sentence is correct; an error in revise is introduced when its sentence is new or "
              "the describe sentence it came from was correct.", ""]
    lines += _table(["reviewer", "items", "describe accuracy", "revise accuracy", "fixed (removed)",
                     "fixed (edited)", "kept errors", "introduced (edited)", "introduced (new)", "net fixed"],
                    [[r["reviewer"], r["items"], _pct(r["describe_accuracy"]), _pct(r["revise_accuracy"]),
                      r["fixed_removed"], r["fixed_edited"], r["kept_error"], r["introduced_edited"],
                      r["introduced_new"], r["net_fixed"]] for r in res["revision"]])
    t = res["revision_text"]
    lines += [f"Text only ({t['items']} items with both texts): of {t['describe_sentences']} describe "
              f"sentences revision kept {t['kept']}, edited {t['edited']} and removed {t['removed']}; "
              f"it added {t['added']} new sentences.", ""]
    if any(res["corrected_captions"].values()):
        lines += ["Corrected captions: " + ", ".join(f"{_cell(k)} {v}" for k, v in res["corrected_captions"].items()),
                  ""]
    if res["stale_entries"]:
        lines += ["Ignored (given on texts that have changed since): "
                  + ", ".join(f"{_cell(k)} {v}" for k, v in res["stale_entries"].items()), ""]
    lines += ["Verdicts: " + ", ".join(f"{v} = {VERDICT_LABELS[v]}" for v in VERDICTS) + "."]
    return "\n".join(lines) + "\n"


def write_score(audit_dir: str | Path) -> dict:
    """Score the folder and write ``score.json`` and ``score.md`` in it; returns the result."""
    res = score_audit(audit_dir)
    out = score_files(audit_dir)
    write_json(out["json"], res)
    write_text(out["md"], score_markdown(res))
    return res
