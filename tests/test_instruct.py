"""Instruction data: grounded CLOSE items, caption-only OPEN answers, balance, resume, formats."""

import collections
import json

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pathgen.config.instruct import InstructConfig
from pathgen.instruct import offline
from pathgen.instruct.build import build_instruct
from pathgen.instruct.records import close_record, validate_record

CAPTIONS = [
    "Tumour epithelium in solid nests with crowded, enlarged hyperchromatic nuclei and marked "
    "pleomorphism. The surrounding fibrous stroma is scant.",
    "Fibrous stroma with sparse, small nuclei and wavy collagen. No necrosis is seen.",
    "Dense lymphoid aggregate of small round dark nuclei. Adjacent adipose tissue with empty vacuoles.",
    "Pale eosinophilic necrotic debris, essentially acellular, with karyorrhectic fragments.",
]


def _write_fixture(tmp_path, n_slides=3):
    files = []
    for s in range(n_slides):
        slide = f"S{s}"
        recs = []
        for i, cap in enumerate(CAPTIONS):
            x, y = 512 * i, 512 * s
            img = tmp_path / "patches" / slide / f"{x}_{y}.jpg"
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (200, 100 + i * 20, 180)).save(img)
            recs.append({"slide_id": slide, "x": x, "y": y, "image": f"{slide}/{x}_{y}.jpg",
                         "caption": cap, "status": "ok", "accepted": True})
        recs.append({"slide_id": slide, "x": 9999, "y": 0, "image": "missing.jpg", "caption": "x",
                     "status": "ok", "accepted": False})  # rejected caption: ignored
        path = tmp_path / f"{slide}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        files.append(path)
    return files


def test_close_candidates_are_grounded_and_contradicted():
    cands = {c["group"]: c for c in offline.close_candidates(CAPTIONS[0])}
    assert cands["cellularity"]["correct"].startswith("Densely cellular")
    assert cands["nuclear_size"]["correct"] == "Enlarged nuclei"
    assert cands["chromatin"]["correct"].startswith("Hyperchromatic")
    assert cands["pleomorphism"]["correct"] == "Marked nuclear pleomorphism"
    for c in cands.values():
        assert len(c["distractors"]) == 3 and c["correct"] not in c["distractors"]


def test_negated_findings_are_not_answers():
    cands = {c["group"]: c for c in offline.close_candidates(CAPTIONS[1])}
    # "No necrosis is seen" must not make necrosis a main-tissue answer.
    assert cands.get("main_tissue", {}).get("correct") != "Necrosis"


def test_open_turns_use_caption_sentences_only():
    turns = offline.open_turns(CAPTIONS[2], 3)
    sentences = offline.split_sentences(CAPTIONS[2])
    assert 1 <= len(turns) <= 3
    for _, answer in turns[1:]:
        assert all(part in sentences for part in offline.split_sentences(answer))


def test_validate_record_catches_bad_letter():
    src = {"slide_id": "S", "x": 1, "y": 2}
    q = {"group": "g", "question": "Q?", "correct": "right", "distractors": ["a", "b", "c"]}
    rec = close_record(src, q, 2, 0)
    assert validate_record(rec, "right") == []
    assert rec["conversations"][1]["value"] == "C"
    rec["conversations"][1]["value"] = "E"
    assert any("not a letter" in p for p in validate_record(rec, "right"))
    rec["conversations"][1]["value"] = "A"
    assert any("does not point" in p for p in validate_record(rec, "right"))


def test_build_outputs_balance_and_formats(tmp_path):
    files = _write_fixture(tmp_path)
    out = tmp_path / "instruct"
    card = build_instruct(files, out, InstructConfig(), patches_root=tmp_path / "patches")
    items = json.loads((out / "pathgen_instruct.json").read_text())
    assert card["n_items"] == len(items) > 0 and card["n_close"] > 0 and card["n_open"] > 0
    for rec in items:
        assert validate_record(rec) == []
        assert (out / "images" / rec["image"]).exists()
        assert rec["image"] == f"{rec['wsi_id']}/{rec['position'][0]}_{rec['position'][1]}.jpg"
    letters = collections.Counter(r["conversations"][1]["value"] for r in items if r["type"] == "CLOSE")
    assert max(letters.values()) - min(letters.values()) <= 1  # balanced answer positions
    assert len({r["id"] for r in items}) == len(items)
    table = pq.read_table(out / "pathgen_instruct.parquet")
    assert table.num_rows == len(items)
    assert table.to_pylist()[0]["conversations"][0]["value"].startswith("<image>\n")
    assert not list(out.glob("drafts.*"))


def test_resume_after_kill_no_loss_no_duplicates(tmp_path, monkeypatch):
    files = _write_fixture(tmp_path)
    out = tmp_path / "instruct"
    import pathgen.instruct.build as build

    real, calls = build.draft_items, {"n": 0}

    def flaky(rec, cfg, chat):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return real(rec, cfg, chat)

    monkeypatch.setattr(build, "draft_items", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_instruct(files, out, InstructConfig(), patches_root=tmp_path / "patches")
    partial = list(out.glob("drafts.*.partial.jsonl"))
    assert len(partial) == 1 and len(partial[0].read_text().splitlines()) == 4
    monkeypatch.setattr(build, "draft_items", real)
    card = build_instruct(files, out, InstructConfig(), patches_root=tmp_path / "patches")
    fresh = build_instruct(files, tmp_path / "fresh", InstructConfig(), patches_root=tmp_path / "patches")
    assert card == fresh
    assert (out / "pathgen_instruct.json").read_text() == (tmp_path / "fresh" / "pathgen_instruct.json").read_text()


def test_llm_generator_with_fake_server_replies(tmp_path):
    files = _write_fixture(tmp_path, n_slides=1)
    replies = iter([])

    def chat(prompt):
        if "Statement:" in prompt:
            return "no" if "WRONG" in prompt else "yes"
        if '"turns"' in prompt:
            return '```json\n{"turns": [{"question": "What is seen?", "answer": "Nests of cells."}]}\n```'
        n = chat.count = getattr(chat, "count", 0) + 1
        if n % 3 == 0:
            return "I cannot help"  # malformed -> rejected
        correct = "WRONG" if n % 3 == 2 else "right"
        return json.dumps({"question": f"Q{n}?", "correct": correct, "distractors": ["a", "b", "c"]})

    cfg = InstructConfig(generator="llm")
    card = build_instruct(files, tmp_path / "o", cfg, patches_root=tmp_path / "patches", chat=chat)
    reasons = card["rejects_by_reason"]
    assert any("malformed" in r for r in reasons)
    assert reasons.get("correct option not entailed by caption", 0) > 0
    assert card["n_close"] > 0 and card["n_open"] == len(CAPTIONS)
    del replies


def _two_servers_config(describe_url: str, summarize_url: str):
    """describe/revise on one server, the summarize agent on another (own model and key)."""
    from pathgen.config.captioning import CaptioningConfig

    return CaptioningConfig(backend="openai", openai={
        "base_url": describe_url, "model": "vlm", "api_key_env": "PATHGEN_TEST_VLM_KEY",
        "temperature": 0.7, "seed": 5}, agents={"summarize": {
            "model": "summ-lm", "endpoint": summarize_url, "api_key_env": "PATHGEN_TEST_LM_KEY",
            "temperature": 0.0, "seed": 11}})


def _instruct_reply(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    if "Statement:" in prompt:
        return "yes"
    if '"turns"' in prompt:
        return '{"turns": [{"question": "What is seen?", "answer": "Nests of cells."}]}'
    return json.dumps({"question": "Which?", "correct": "right", "distractors": ["a", "b", "c"]})


def test_one_text_chat_adapter_sends_to_the_summarize_agent(monkeypatch):
    """Instruct's llm generator and selection's llm extractor both talk to the summarize agent
    (its endpoint, model, key and generation settings), never to describe's server."""
    from pathgen_testkit.mock_chat_server import MockChatServer
    from pathgen.instruct.chat import TextChat, chat_from_params, chat_params, chat_settings

    monkeypatch.setenv("PATHGEN_TEST_VLM_KEY", "vlm-key")
    monkeypatch.setenv("PATHGEN_TEST_LM_KEY", "lm-key")
    with MockChatServer(latency_s=0.0, served_models={"vlm"}, api_key="vlm-key") as vlm, \
            MockChatServer(latency_s=0.0, served_models={"summ-lm"}, api_key="lm-key") as lm:
        spec = chat_settings(_two_servers_config(vlm.base_url, lm.base_url), "test")
        assert chat_from_params(json.loads(json.dumps(chat_params(spec)))) == spec  # rule params
        with TextChat(spec, 64) as chat:
            assert chat.id == "openai:summ-lm" and "Tumour" in chat("Summarize: dense tumour.")
        assert [f for _, f in lm.log] == ["ok"] and vlm.log == []
        body = lm.bodies[0]
        assert (body["model"], body["max_tokens"], body["temperature"], body["seed"]) == ("summ-lm", 64, 0.0, 11)


def test_llm_instruct_generator_over_the_summarize_agent(tmp_path, monkeypatch):
    from pathgen_testkit.mock_chat_server import MockChatServer
    from pathgen.instruct.chat import TextChat, chat_settings
    from pathgen.instruct.llm import REPLY_MAX_TOKENS

    monkeypatch.setenv("PATHGEN_TEST_LM_KEY", "lm-key")
    files = _write_fixture(tmp_path, n_slides=1)
    with MockChatServer(latency_s=0.0, served_models={"vlm"}) as vlm, \
            MockChatServer(latency_s=0.0, served_models={"summ-lm"}, api_key="lm-key",
                           reply=_instruct_reply) as lm:
        chat = TextChat(chat_settings(_two_servers_config(vlm.base_url, lm.base_url), "test"),
                        REPLY_MAX_TOKENS)
        with chat:
            card = build_instruct(files, tmp_path / "o", InstructConfig(generator="llm", close_per_patch=1),
                                  patches_root=tmp_path / "patches", chat=chat)
    assert vlm.log == [] and lm.log and all(f == "ok" for _, f in lm.log)
    assert card["n_close"] == len(CAPTIONS) and card["n_open"] == len(CAPTIONS)
    assert card["generator"].startswith("llm openai:summ-lm (prompts ")  # provenance: the model


def test_text_chat_needs_a_language_model():
    from pathgen.config import ConfigError
    from pathgen.config.captioning import CaptioningConfig
    from pathgen.instruct.chat import chat_settings

    with pytest.raises(ConfigError, match="needs a language model.*captioning.agents.summarize.backend"):
        chat_settings(CaptioningConfig(backend="morphometric"), "instruct.generator 'llm'")
    # describe stays morphometric, summarize is a language model: fine
    ccfg = CaptioningConfig(backend="morphometric", agents={"summarize": {"backend": "openai",
                                                                          "model": "lm"}})
    assert chat_settings(ccfg, "x").model == "lm"
