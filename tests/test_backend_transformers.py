"""The `transformers` backend on tiny random models built offline (plumbing, not quality):
a tiny LlavaForConditionalGeneration + processor for describe/revise and a tiny Llama
causal LM for summarize, both saved to disk and loaded through the real from_pretrained path."""

from __future__ import annotations

import json

import pytest

from pathgen_testkit.patches import write_selection
from pathgen_testkit.tiny_vlm import build_tiny_vlm, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """root/vlm: tiny LLaVA + processor; root/lm: a tiny Llama causal LM on the same tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("tiny")
    build_tiny_vlm(root / "vlm")
    tok, vocab = tiny_tokenizer()
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                 max_position_embeddings=512, pad_token_id=1, bos_token_id=2,
                                 eos_token_id=3)).save_pretrained(root / "lm")
    tok.save_pretrained(root / "lm")
    return root


@pytest.mark.parametrize("separate_lm", [True, False])
def test_transformers_backend_batched_plumbing(tmp_path, tiny_models, separate_lm):
    import torch

    from pathgen.captioning.backends.transformers import TransformersBackend
    from pathgen.captioning.stage import caption_slide
    from pathgen.config.captioning import CaptioningConfig

    torch.set_num_threads(1)
    tcfg = dict(model=str(tiny_models / "vlm"), device="cpu", batch_size=4, batch_wait_ms=50,
                max_new_tokens=6, summary_max_new_tokens=6,
                text_model=str(tiny_models / "lm") if separate_lm else None)
    cfg = CaptioningConfig(backend="transformers", transformers=tcfg, concurrency=4,
                           max_failed_fraction=0.0)
    backend = TransformersBackend(cfg.transformers)
    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma"), n=4)
    out = tmp_path / "cap" / "slide_a.jsonl"
    summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5, backend=backend)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 4 and summary["n_failed"] == 0
    for r in recs:  # one string per item from each agent
        assert r["status"] == "ok" and isinstance(r["describe"], str) and isinstance(r["caption"], str)
        assert r["backend"] == "transformers" and r["model"] == str(tiny_models / "vlm")
        assert r["n_tokens"] <= 77
    # 4 items x (describe + revise) went through the VLM in batches, not one by one
    assert backend.vision.batches < 8
    if separate_lm:
        assert backend.text is not backend.vision and backend.text.batches >= 1


@pytest.mark.parametrize("oom", ["torch", "runtime"])
def test_failing_batches_are_split_and_a_bad_item_is_recorded(tmp_path, tiny_models, monkeypatch, oom):
    """generate() raises out-of-memory on every batch > 1 and a non-OOM error on one patch:
    batches are split down to single items, the other items are captioned, the bad one is
    recorded as failed with its reason, and the slide completes."""
    import torch
    from PIL import Image

    from pathgen.captioning.backends.transformers import TransformersBackend, is_oom
    from pathgen.captioning.stage import caption_slide
    from pathgen.config.captioning import CaptioningConfig

    torch.set_num_threads(1)
    cfg = CaptioningConfig(backend="transformers", concurrency=4, max_failed_fraction=0.5,
                           transformers=dict(model=str(tiny_models / "vlm"), device="cpu",
                                             batch_size=4, batch_wait_ms=50, max_new_tokens=4,
                                             summary_max_new_tokens=4))
    backend = TransformersBackend(cfg.transformers)
    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma", "lymphoid"), n=6)
    bad = patches / "slide_a" / "1024_1024.jpg"  # the third patch (x = 1024)
    with Image.open(bad) as im:
        bad_pv = backend.vision.gen.processor.image_processor(
            images=[im.convert("RGB")], return_tensors="pt")["pixel_values"][0]
    model, sizes = backend.vision.gen.model, []
    real = model.generate

    def flaky(**kw):
        n = kw["input_ids"].shape[0]
        sizes.append(n)
        if n > 1:
            raise (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                   if oom == "torch" else RuntimeError("CUDA error: out of memory"))
        pv = kw.get("pixel_values")
        if pv is not None and torch.allclose(pv[0].float(), bad_pv.float(), atol=1e-3):
            raise ValueError("image features and image tokens do not match")
        return real(**kw)

    monkeypatch.setattr(model, "generate", flaky)
    out = tmp_path / "cap" / "slide_a.jsonl"
    summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5, backend=backend)
    recs = {r["x"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert max(sizes) > 1 and backend.vision.split_batches >= 1  # batches formed and split
    assert backend.vision.batch_size < 4  # an OOM lowers the batch size for later batches
    assert summary["n_failed"] == 1 and summary["n_ok"] == 5
    assert recs[1024]["status"] == "failed" and recs[1024]["accepted"] is False
    assert "describe:" in recs[1024]["error"] and "image features" in recs[1024]["error"]
    assert all(r["status"] == "ok" and r["caption"] is not None for x, r in recs.items() if x != 1024)
    assert is_oom(RuntimeError("CUDA out of memory")) and not is_oom(ValueError("x"))


def test_a_local_model_per_agent_shares_weights(tmp_path, tiny_models):
    """agents: describe and revise name the same VLM with different reply lengths (two
    instances, one set of weights); summarize names its own causal LM (its instance never
    loads the VLM). Provenance says which model wrote each stage."""
    import torch

    from pathgen.captioning.backends import make_backend
    from pathgen.captioning.stage import caption_slide
    from pathgen.config.captioning import CaptioningConfig

    torch.set_num_threads(1)
    vlm, lm = str(tiny_models / "vlm"), str(tiny_models / "lm")
    cfg = CaptioningConfig(backend="transformers", concurrency=4, max_failed_fraction=0.0,
                           transformers=dict(model=vlm, device="cpu", batch_size=4,
                                             batch_wait_ms=50, max_new_tokens=6),
                           agents=dict(revise=dict(max_tokens=3), summarize=dict(model=lm, max_tokens=5)))
    backend = make_backend(cfg)
    d, r, s = (backend.parts[x] for x in ("describe", "revise", "summarize"))
    assert d is not r and d.vision.gen.model is r.vision.gen.model  # shared weights
    assert s.vision is None and s.text.gen.model is not d.vision.gen.model
    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma"), n=4)
    out = tmp_path / "cap" / "slide_a.jsonl"
    summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5, backend=backend)
    assert summary["n_ok"] == 4
    assert {k: v["model"] for k, v in summary["agents"].items()} == {
        "describe": vlm, "revise": vlm, "summarize": lm}
    assert d.vision.batches >= 1 and r.vision.batches >= 1 and s.text.batches >= 1
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["provenance"]["agents"]["summarize"] == {"backend": "transformers", "model": lm}
    # the next slide of a chunk job builds its backends again: the weights are not reloaded
    again = make_backend(cfg)
    assert again.parts["describe"] is not d and again.parts["describe"].vision.gen.model is d.vision.gen.model


def test_text_chat_over_a_summarize_agent_with_its_own_lm(tiny_models, monkeypatch):
    """The one text-chat adapter (instruct / report findings) on a transformers summarize
    agent with its own causal LM: only that LM is loaded (never the describe VLM)."""
    import torch

    from pathgen.captioning.backends import transformers as tb
    from pathgen.config.captioning import CaptioningConfig
    from pathgen.instruct.chat import TextChat, chat_settings

    torch.set_num_threads(1)
    loaded = []
    real_load = tb._load
    monkeypatch.setattr(tb, "_load", lambda kind, path, *a: loaded.append((kind, path)) or real_load(kind, path, *a))
    vlm, lm = str(tiny_models / "vlm"), str(tiny_models / "lm")
    cfg = CaptioningConfig(backend="transformers", transformers=dict(model=vlm, device="cpu", batch_wait_ms=0),
                           agents=dict(summarize=dict(model=lm)))
    with TextChat(chat_settings(cfg, "instruct.generator 'llm'"), 4) as chat:
        assert chat.id == f"transformers:{lm}" and isinstance(chat("Summarize: dense tumour."), str)
    assert loaded == [("lm", lm)]
