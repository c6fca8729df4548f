"""Merge a checkpoint's LoRA adapter into the base model and write one self-contained Hugging
Face folder that the transformers backend (AutoModelForImageTextToText + AutoProcessor) and
vLLM load by path: config.json with ``architectures``, safetensors weights, processor and
tokenizer files, the chat template, and pathgen_agent.json (where the weights came from)."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_dir, write_json
from ..paths import Layout
from .lora import load_adapter_weights, load_base, wrap_lora


class ExportError(RuntimeError):
    pass


def check_export(model_dir: Path) -> None:
    """What vLLM and transformers need is there (raises ExportError naming what is missing)."""
    d = Path(model_dir)
    cfg_path = Layout.agents_model_files(d)["config"]
    missing = []
    if not cfg_path.is_file() or not json.loads(cfg_path.read_text()).get("architectures"):
        missing.append("config.json with 'architectures'")
    if not list(d.glob("*.safetensors")):
        missing.append("safetensors weights")
    if not (list(d.glob("tokenizer*.json")) or list(d.glob("*.model"))):
        missing.append("tokenizer files")
    if not list(d.glob("chat_template*")) and '"chat_template"' not in "".join(
            p.read_text() for p in d.glob("*config.json")):
        missing.append("a chat template")
    if missing:
        raise ExportError(f"exported model {d} lacks {', '.join(missing)}")


def export_merged(checkpoint: str | Path, out_dir: str | Path, tcfg, card: dict | None = None,
                  device: str | None = None) -> Path:
    """Load ``tcfg.base_model``, apply the checkpoint's adapter, merge it into the weights and
    save the plain model (no peft needed to load it) + processor into ``out_dir``, atomically."""
    vlm, processor = load_base(tcfg.base_model, tcfg, device)
    model = wrap_lora(vlm, tcfg.model_copy(update={"gradient_checkpointing": False}))
    load_adapter_weights(model, Path(checkpoint))
    merged = model.merge_and_unload()
    tok = getattr(processor, "tokenizer", None)
    if tok is not None and not getattr(tok, "chat_template", None) and getattr(processor, "chat_template", None):
        tok.chat_template = processor.chat_template  # vLLM reads the tokenizer's template
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp)  # transformers 5 writes safetensors only
        processor.save_pretrained(tmp)
        write_json(Layout.agents_model_files(tmp)["card"],
                   {"base_model": tcfg.base_model, "checkpoint": str(checkpoint),
                    "lora": {"r": tcfg.lora_r, "alpha": tcfg.lora_alpha,
                             "target_modules": tcfg.lora_target_modules}, **(card or {})})
        check_export(tmp)
    return out_dir
