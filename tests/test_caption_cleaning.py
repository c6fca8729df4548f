"""Captions as real VLMs write them (issue 20.5): markdown, bullet lists, chat preambles and the
reasoning blocks of thinking models are removed before any agent text is stored, passed on or
filtered; an answer with nothing usable left is rejected (``reasoning_only`` / ``empty``).

tests/fixtures/vlm_outputs.json: outputs written in the documented answer styles of current
open models (Qwen2/2.5-VL markdown, LLaVA prose, InternVL bullets, DeepSeek-R1 / QwQ / Qwen3 /
Kimi-VL reasoning blocks, Llama-3 preambles, numbered findings, headings), each with the
expected plain prose and/or the expected reject reason."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from pathgen.captioning import filters as F
from pathgen.captioning import pipeline
from pathgen.captioning.backends.base import Backend
from pathgen.captioning.budget import TokenBudget
from pathgen.captioning.clean import clean_model_text, clean_report, unusable_reason
from pathgen.captioning.items import PatchItem, Reply
from pathgen.captioning.prompts import load_templates
from pathgen.captioning.stage import summarize_records
from pathgen.config.captioning import FiltersConfig

FIX = Path(__file__).parent / "fixtures"
CORPUS = json.loads((FIX / "vlm_outputs.json").read_text(encoding="utf-8"))["outputs"]
PROSE = json.loads((FIX / "pathgen_style_captions.json").read_text(encoding="utf-8"))["captions"]
WIDE = TokenBudget("ViT-B-16", 400)  # nothing in the corpus is truncated under it
BUDGET = TokenBudget("ViT-B-16", 77)
CLEAN = [e for e in CORPUS if "clean" in e]
REJECT = [e for e in CORPUS if "reject" in e]
_ids = [e["id"] for e in CORPUS]
_MARKUP = re.compile(r"\*|__|^#|\s#|`|<\/?think>|◁|^[-•]\s|\s[-•]\s|^\d+\.\s|\n")


def test_corpus_covers_the_documented_styles():
    assert len(CORPUS) >= 25 and len(set(_ids)) == len(_ids)
    assert all("clean" in e or "reject" in e for e in CORPUS)
    assert {e["stage"] for e in CORPUS} == {"describe", "revise", "summarize"}
    styles = " ".join(e["style"] for e in CORPUS)
    for family in ("Qwen2-VL", "Qwen2.5-VL", "LLaVA", "InternVL", "DeepSeek-R1", "QwQ", "Qwen3",
                   "Llama-3", "Sure!", "numbered", "heading"):
        assert family in styles, family
    outputs = " ".join(e["output"] for e in CORPUS)
    for mark in ("**", "- ", "•", "1. ", "### ", "# ", "<think>", "</think>", "Here is",
                 "Here's", "Caption:", "Summary:", "Description:", "Certainly"):
        assert mark in outputs, mark
    assert {e["reject"] for e in REJECT} == {"reasoning_only", "empty", "refusal", "non_english",
                                            "repeated_ngrams"}


@pytest.mark.parametrize("e", CLEAN, ids=[e["id"] for e in CLEAN])
def test_cleaned_to_plain_prose(e):
    out = clean_model_text(e["output"])
    assert out == e["clean"]
    assert not _MARKUP.search(out), out
    assert not re.match(r"(?i)(here|sure|certainly|caption|summary|description)\b", out)
    assert clean_model_text(out) == out  # idempotent: cleaning again changes nothing
    assert unusable_reason(e["output"]) is None


@pytest.mark.parametrize("e", CORPUS, ids=_ids)
def test_corpus_through_the_filters(e):
    """As an imported caption: cleaned in place, then accepted, or rejected for its reason."""
    rec = {"status": "ok", "caption": e["output"], "provenance": {}}
    F.apply_filters([rec], FiltersConfig(), WIDE)
    if "clean" in e:
        assert rec["caption"] == e["clean"]
    if "reject" not in e:
        assert rec["reject_reasons"] == [] and rec["accepted"] is True
        assert rec["caption"] == e["clean"]
        assert e["clean"] == e["output"] or rec["n_tokens"] == WIDE.count(e["clean"])
    else:
        assert e["reject"] in rec["reject_reasons"] and rec["accepted"] is False
    # judged the same whether or not the record was cleaned first
    raw = {"status": "ok", "caption": e["output"]}
    assert F.text_reasons(raw, FiltersConfig(), WIDE) == rec["reject_reasons"]


class _Script(Backend):
    """One agent answers with the corpus output, the others echo their input (offline)."""
    name, model = "script", "script"

    def __init__(self, stage: str, output: str):
        self.stage, self.output, self.calls = stage, output, []

    async def describe(self, item, prompt):
        self.calls.append(("describe", None))
        return Reply(self.output if self.stage == "describe" else
                     "Dense sheets of tumour cells with enlarged nuclei in a fibrous stroma.")

    async def revise(self, item, description, prompt):
        self.calls.append(("revise", description))
        return Reply(self.output if self.stage == "revise" else description)

    async def summarize(self, description, prompt, budget):
        self.calls.append(("summarize", description))
        return Reply(self.output if self.stage == "summarize" else description)


def _settings(budget=WIDE):
    return pipeline.AgentSettings(templates=load_templates("v1"), budget=budget,
                                  prompt_hash="test", summary_retries=1)


def _caption(stage, output, budget=WIDE):
    item = PatchItem("s", 0, 0, 0, 512, 256, "0.jpg", Path("0.jpg"), 0.5)
    backend = _Script(stage, output)
    return asyncio.run(pipeline.caption_item(item, backend, _settings(budget))), backend


_FIELD = {"describe": "describe", "revise": "revise", "summarize": "caption"}


@pytest.mark.parametrize("e", CORPUS, ids=_ids)
def test_pipeline_cleans_every_agent_text(e):
    """describe / revise / summarize answers are cleaned before they are stored and passed on;
    nothing usable left ends the item (no further calls) and the filters say why."""
    rec, backend = _caption(e["stage"], e["output"])
    field = _FIELD[e["stage"]]
    assert rec["status"] == "ok" and rec[field] == clean_model_text(e["output"])
    for _agent, received in backend.calls:  # every later agent got the cleaned text
        if received is not None:
            assert received == clean_model_text(received) and "<think>" not in received
    nxt = {"describe": "revise", "revise": "summarize"}.get(e["stage"])
    if nxt and rec[field]:
        assert dict(backend.calls)[nxt] == rec[field]  # the next agent got exactly the clean text
    F.apply_filters([rec], FiltersConfig(), WIDE)
    if "clean" in e:
        assert rec[field] == e["clean"] and rec["caption"] == e["clean"]
    if "reject" not in e:
        assert rec["accepted"]
        assert "raw" not in rec  # raw text is only kept when nothing usable was left
        kinds = clean_report(e["output"])[1]
        assert rec["provenance"].get("cleaned", {}).get(field, []) == list(kinds)
    else:
        assert e["reject"] in rec["reject_reasons"] and not rec["accepted"]
    if e.get("reject") in ("reasoning_only", "empty"):
        assert rec["caption"] == "" and rec["n_tokens"] == 0
        assert rec["raw"] == {field: e["output"]} and rec["reject_reasons"] == [e["reject"]]
        assert [a for a, _ in backend.calls][-1] == e["stage"]  # nothing asked after it


def test_summary_counts_the_new_reasons():
    recs = []
    for e in REJECT:
        rec, _ = _caption(e["stage"], e["output"])
        recs.append(rec)
    F.apply_filters(recs, FiltersConfig(), WIDE)
    assert "reasoning_only" in F.REASONS and "empty" in F.REASONS
    s = summarize_records(recs, "s", "script", "script", "test", 1.0, len(recs))
    want = {r: sum(e["reject"] == r for e in REJECT) for r in ("reasoning_only", "empty")}
    assert {r: s["reject_reasons"][r] for r in want} == want
    assert s["n_ok"] == len(recs) and s["n_rejected"] == len(recs)


def test_cached_records_are_cleaned_when_refiltered():
    """A partial file written before the cleaning step: re-filtering cleans describe, revise and
    caption in place (as build-data and the dataset read them), notes what was removed."""
    think = "<think>\nThe user wants a description.\n</think>\n\n"
    rec = {"status": "ok", "describe": think + "**Description:** Tumour cells in nests.",
           "revise": "Sure! Here is the revised description:\n\n- Tumour cells in nests",
           "caption": "Caption: **Tumour cells** arranged in nests within a fibrous stroma.",
           "n_tokens": 99, "provenance": {}}
    F.apply_filters([rec], FiltersConfig(), BUDGET)
    assert rec["describe"] == "Tumour cells in nests." == rec["revise"]
    assert rec["caption"] == "Tumour cells arranged in nests within a fibrous stroma."
    assert rec["n_tokens"] == BUDGET.count(rec["caption"]) and rec["accepted"]
    assert rec["provenance"]["cleaned"] == {"describe": ["reasoning", "preamble", "markdown"],
                                            "revise": ["preamble", "list"],
                                            "caption": ["preamble", "markdown"]}
    again = json.loads(json.dumps(rec))
    F.apply_filters([again], FiltersConfig(), BUDGET)
    assert again == rec  # idempotent


def test_reasoning_only_describe_of_a_cached_record():
    rec = {"status": "ok", "describe": "<think>\nLet me look at the nuclei", "revise": "",
           "caption": "", "provenance": {}}
    assert F.text_reasons(rec, FiltersConfig(), BUDGET) == ["reasoning_only"]
    F.apply_filters([rec], FiltersConfig(), BUDGET)
    assert rec["reject_reasons"] == ["reasoning_only"] and rec["describe"] == ""
    assert rec["raw"] == {"describe": "<think>\nLet me look at the nuclei"}


@pytest.mark.parametrize("text,reason", [
    ("", "empty"), ("   \n ", "empty"), ("<think></think>", "empty"),
    ("<think>\n\n</think>\n", "empty"), ("Sure!", "empty"), ("**Caption:**", "empty"),
    ("<think>reasoning</think>", "reasoning_only"), ("<thinking>x</thinking>\n", "reasoning_only"),
    ("<THINK>cut off", "reasoning_only"), ("why\n</think>", "reasoning_only"),
])
def test_unusable_reasons(text, reason):
    assert clean_model_text(text) == "" and unusable_reason(text) == reason


# -- previous behaviour kept ------------------------------------------------------------------
def test_good_prose_is_unchanged_byte_for_byte():
    unchanged = [e["output"] for e in CLEAN if e["output"] == e["clean"]]
    assert len(unchanged) >= 2
    for c in PROSE + unchanged:
        assert clean_model_text(c) == c and clean_report(c)[1] == ()
    assert pipeline.clean_caption(PROSE[0]) == PROSE[0]
    recs = [{"status": "ok", "caption": c, "describe": c, "revise": c, "provenance": {}}
            for c in PROSE]
    F.apply_filters(recs, FiltersConfig(over_budget="reject"), BUDGET)
    assert [r["caption"] for r in recs] == PROSE and all("cleaned" not in r["provenance"]
                                                         for r in recs)


@pytest.mark.parametrize("text,reason", [
    ("As an AI language model, I cannot determine the tissue type in this image.", "refusal"),
    ("I'm sorry, but I am unable to analyze medical images of this kind for you.", "refusal"),
    ("Tumor cells tumor cells tumor cells tumor cells with enlarged nuclei in a fibrous stroma.",
     "repeated_ngrams"),
    ("图像显示乳腺组织，可见肿瘤细胞呈巢状排列，细胞核增大深染，间质纤维化明显。", "non_english"),
    # the same behind markdown or a reasoning block
    ("<think>ok</think>\n\n**Answer:** As an AI language model, I cannot see the image well.",
     "refusal"),
    ("- 图像显示乳腺组织\n- 可见肿瘤细胞呈巢状排列\n- 细胞核增大深染", "non_english"),
])
def test_rejections_kept(text, reason):
    rec = {"status": "ok", "caption": text, "describe": "x", "revise": "x", "provenance": {}}
    assert reason in F.text_reasons(rec, FiltersConfig(), BUDGET)


def test_old_caption_cleaning_still_applies():
    assert pipeline.clean_caption('  Here is the caption:  "Dense  tumour\tcells with nuclei."') \
        == "Dense tumour cells with nuclei."
    assert pipeline.clean_caption("caption: Dense tumour cells.") == "Dense tumour cells."
    assert pipeline.clean_caption(None) == ""
