"""A tiny randomly initialised LLaVA (CLIP vision tower + Llama text model) and its processor,
built offline from configs (no hub access): what the agents tests fine-tune and caption with.

Same construction as tests/test_backend_transformers.py (LlavaConfig with a tiny
CLIPVisionConfig + LlamaConfig, a word-level tokenizer and a chat template), as a helper that
takes the words the toy data needs, so answers are real tokens rather than <unk>.
"""

from __future__ import annotations

from pathlib import Path

CHAT = ("{% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}"
        "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT: {% endif %}")
SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:"]
BASE_WORDS = ". , the a of with nuclei dense stroma tissue cells image describe and in is are".split()


def tiny_tokenizer(words: list[str] = ()):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for w in SPECIAL + BASE_WORDS + [w.lower() for w in words]:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                pre_tokenizers.Punctuation()])
    tk.decoder = decoders.WordPiece(prefix="##")
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
