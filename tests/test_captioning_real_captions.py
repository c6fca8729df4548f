"""The default filters on realistic PathGen-style captions (tests/fixtures: 3-4 sentences,
50-110 CLIP tokens, written for these tests): over-budget captions are cut at a sentence
boundary and recorded, never rejected unless configured; differential wording that repeats a
multi-word diagnosis is not "repeated n-grams", while generation loops still are."""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path

import pytest

from pathgen.captioning import filters as F
from pathgen.captioning.budget import TokenBudget, split_sentences
from pathgen.config.captioning import FiltersConfig

CAPTIONS = json.loads((Path(__file__).parent / "fixtures" / "pathgen_style_captions.json")
                      .read_text(encoding="utf-8"))["captions"]
BUDGET = TokenBudget("ViT-B-16", 77)


def _recs():
    # captions that come from outside: describe/revise are the caption itself
    return [{"status": "ok", "caption": c, "describe": c, "revise": c, "provenance": {}}
            for c in CAPTIONS]


def test_fixture_is_pathgen_shaped():
    toks = [BUDGET.count(c) for c in CAPTIONS]
    assert len(CAPTIONS) >= 20 and all(50 <= t <= 110 for t in toks)
    assert all(3 <= len(split_sentences(c)) <= 4 for c in CAPTIONS)
    assert statistics.median(toks) >= 77 and sum(t > 77 for t in toks) >= 10  # like the release


def test_default_filters_accept_real_captions_and_truncate_the_long_ones():
    recs = _recs()
    F.apply_filters(recs, FiltersConfig(), BUDGET)
    assert [r["reject_reasons"] for r in recs] == [[] for _ in recs]
    for orig, r in zip(CAPTIONS, recs):
        n = BUDGET.count(orig)
        if n <= 77:
            assert r["caption"] == orig and not r["provenance"].get("truncated")
            continue
        kept = split_sentences(r["caption"])  # whole sentences from the start, within budget
        assert kept == split_sentences(orig)[:len(kept)] and len(kept) >= 1
        assert r["n_tokens"] == BUDGET.count(r["caption"]) <= 77
        assert r["provenance"] == {"truncated": True, "tokens_before_truncation": n}


def test_over_budget_rejects_only_when_configured():
    recs = _recs()
    F.apply_filters(recs, FiltersConfig(over_budget="reject"), BUDGET)
    long = [BUDGET.count(c) > 77 for c in CAPTIONS]
    assert [("over_budget" in r["reject_reasons"]) for r in recs] == long
    assert [r["caption"] for r in recs] == CAPTIONS  # untouched
    # a model that overran (the pipeline cut it and said so) is rejected too in this mode
    cut = {"status": "ok", "caption": "Dense tumor cells with enlarged nuclei in a fibrous stroma.",
           "describe": "", "revise": "", "provenance": {"truncated": True}}
    assert F.text_reasons(cut, FiltersConfig(over_budget="reject"), BUDGET) == ["over_budget"]
    assert F.text_reasons(copy.deepcopy(cut), FiltersConfig(), BUDGET) == []


def test_differential_wording_is_not_repetition():
    rcc = next(c for c in CAPTIONS if c.count("renal cell carcinoma") >= 3)
    assert F.repeated_ngrams(rcc, 3, 2) is False
    assert F.repeated_ngrams("Carcinoma in situ is seen here, carcinoma in situ is seen there, and "
                             "carcinoma in situ is seen again.", 3, 2) is True  # a prose loop
    terms = F.term_words("Clear cell renal cell carcinoma and ductal carcinoma in situ.")
    assert terms == ["clear#cell", "renal#cell#carcinoma", "and", "ductal#carcinoma#in#situ"]


@pytest.mark.parametrize("loop", [
    "Tumor cells tumor cells tumor cells tumor cells with enlarged nuclei in a fibrous stroma.",
    "The nuclei are enlarged and the nuclei are enlarged and the nuclei are enlarged in the field.",
    "Dense dense dense dense stroma with spindle nuclei and scattered lymphocytes in the field.",
    "There is a gland with a lumen, there is a gland with a lumen, there is a gland with a lumen.",
])
def test_generation_loops_are_still_rejected(loop):
    rec = {"status": "ok", "caption": loop, "describe": loop, "revise": loop}
    assert "repeated_ngrams" in F.text_reasons(rec, FiltersConfig(), BUDGET)
