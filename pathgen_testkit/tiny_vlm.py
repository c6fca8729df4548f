"""A tiny randomly initialised LLaVA (CLIP vision tower + Llama text model) and its processor,
built offline from configs (no hub access): what the agents tests fine-tune and caption with.

LlavaConfig with a tiny CLIPVisionConfig + LlamaConfig, a word-level tokenizer and a chat
template; it takes the words the toy data needs, so answers are real tokens rather than <unk>.
Also used by tests/test_backend_transformers.py (the backend's plumbing tests).
"""

from __future__ import annotations

from pathlib import Path

CHAT = ("{% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}"
        "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT: {% endif %}")
SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:"]
BASE_WORDS = ". , the a of with nuclei dense stroma tissue cells image describe and in is are".split()


def word_level(words: list[str]):
    """A lower-casing word-level tokenizer over `words` (first spelling wins) and its vocab, split on spaces
    and punctuation."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab: dict[str, int] = {}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                pre_tokenizers.Punctuation()])
    tk.decoder = decoders.WordPiece(prefix="##")
    return tk, vocab


def tiny_tokenizer(words: list[str] = ()):
    from transformers import PreTrainedTokenizerFast

    tk, vocab = word_level(SPECIAL + BASE_WORDS + [w.lower() for w in words])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>",
                                  bos_token="<s>", eos_token="</s>",
                                  extra_special_tokens={"image_token": "<image>"})
    tok.chat_template = CHAT
    return tok, vocab


def build_tiny_vlm(out: Path, words: list[str] = (), seed: int = 0, init_range: float = 0.2) -> Path:
    """Save a tiny LlavaForConditionalGeneration + LlavaProcessor into ``out``; returns it.
    ``init_range``: weight std; the usual 0.02 leaves a frozen 32-wide lm_head unable to move
    logits more than ~0.6 from uniform, so adapters could barely lower the loss."""
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    torch.manual_seed(seed)
    tok, vocab = tiny_tokenizer(words)
    text_cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                           max_position_embeddings=512, pad_token_id=1, bos_token_id=2,
                           eos_token_id=3, initializer_range=init_range)
    vlm = LlavaForConditionalGeneration(LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=32, patch_size=8),
        text_config=text_cfg, image_token_id=vocab["<image>"]))
    proc = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                             crop_size={"height": 32, "width": 32}),
                          tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                          chat_template=CHAT, num_additional_image_tokens=1)
    vlm.save_pretrained(out)
    proc.save_pretrained(out)
    return Path(out)


QWEN_CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}"
             "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
             "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
             "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
             "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QWEN_SPECIAL = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def build_tiny_qwen2vl(out: Path, words: list[str] = (), seed: int = 0) -> Path:
    """Save a tiny Qwen2VLForConditionalGeneration + Qwen2VLProcessor (56 px images -> 4
    merged image tokens, M-RoPE, a Qwen-style chat template) into ``out``; returns it."""
    import torch
    from transformers import (PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor)

    torch.manual_seed(seed)
    tk, vocab = word_level(QWEN_SPECIAL + BASE_WORDS + ["user", "assistant"] + [w.lower() for w in words])
    tk.add_special_tokens(QWEN_SPECIAL)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<|endoftext|>",
                                  eos_token="<|im_end|>",
                                  extra_special_tokens={"image_token": "<|image_pad|>",
                                                        "video_token": "<|video_pad|>"})
    tok.chat_template = QWEN_CHAT
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=1024, initializer_range=0.2,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                         bos_token_id=None, eos_token_id=vocab["<|im_end|>"],
                         pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"])
    pixels = dict(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14, merge_size=2,
                  temporal_patch_size=2)
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=tok,
                            video_processor=Qwen2VLVideoProcessor(**pixels), chat_template=QWEN_CHAT)
    Qwen2VLForConditionalGeneration(cfg).save_pretrained(out)
    proc.save_pretrained(out)
    return Path(out)
