"""Export a checkpoint of an agent training run, in one of two forms:

- merged (default): the LoRA adapter merged into the base model and saved as one
  self-contained Hugging Face folder that the transformers backend (AutoModelForImageTextToText
  + AutoProcessor) and vLLM load by path: config.json with ``architectures``, safetensors
  weights, processor and tokenizer files, the chat template, and pathgen_agent.json (where the
  weights came from);
- adapter: the adapter alone, as peft's ``save_pretrained`` writes it (adapter_config.json +
  adapter_model.safetensors), plus pathgen_agent.json (base model, agent, LoRA rank, target
  modules, the ``--max-lora-rank`` vLLM needs), for vLLM's multi-LoRA serving of several
  agents over one base model: ``vllm serve BASE --enable-lora --lora-modules NAME=FOLDER``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

from ..atomic import atomic_dir, write_json
from ..config.agents import AgentName
from .files import agents_model_files, agents_run_files
from .lora import load_adapter_weights, load_base, wrap_lora


class ExportError(RuntimeError):
    pass


def check_export(model_dir: Path) -> None:
    """What vLLM and transformers need is there (raises ExportError naming what is missing)."""
    d = Path(model_dir)
    cfg_path = agents_model_files(d)["config"]
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


def _checkpoint_model(checkpoint: str | Path, tcfg, device: str | None = None):
    """(peft model of ``tcfg.base_model`` with the checkpoint's adapter, processor)."""
    vlm, processor = load_base(tcfg.base_model, tcfg, device)
    model = wrap_lora(vlm, tcfg.model_copy(update={"gradient_checkpointing": False}))
    try:
        load_adapter_weights(model, Path(checkpoint))
    except RuntimeError as err:  # torch: size mismatch (another lora_r or base model)
        raise ExportError(f"checkpoint {checkpoint} does not fit {tcfg.base_model} with "
                          f"agents.train.lora_r={tcfg.lora_r} and lora_target_modules="
                          f"{tcfg.lora_target_modules}: export it with the settings it was "
                          f"trained with ({str(err).splitlines()[0]})") from None
    return model, processor


def export_merged(checkpoint: str | Path, out_dir: str | Path, tcfg, card: dict | None = None,
                  device: str | None = None) -> Path:
    """Load ``tcfg.base_model``, apply the checkpoint's adapter, merge it into the weights and
    save the plain model (no peft needed to load it) + processor into ``out_dir``, atomically."""
    model, processor = _checkpoint_model(checkpoint, tcfg, device)
    merged = model.merge_and_unload()
    tok = getattr(processor, "tokenizer", None)
    if tok is not None and not getattr(tok, "chat_template", None) and getattr(processor, "chat_template", None):
        tok.chat_template = processor.chat_template  # vLLM reads the tokenizer's template
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp)  # transformers 5 writes safetensors only
        processor.save_pretrained(tmp)
        write_json(agents_model_files(tmp)["card"],
                   {"base_model": tcfg.base_model, "checkpoint": str(checkpoint),
                    "lora": {"r": tcfg.lora_r, "alpha": tcfg.lora_alpha,
                             "target_modules": tcfg.lora_target_modules}, **(card or {})})
        check_export(tmp)
    return out_dir


AGENT_NAMES = get_args(AgentName)  # the trained agents: describe, revise
# vLLM's LoRAConfig accepts only these --max-lora-rank values (newer versions also 1)
VLLM_MAX_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
ADAPTER_FORMAT = "adapter"


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest ``--max-lora-rank`` vLLM accepts that serves an adapter of ``rank``."""
    for allowed in VLLM_MAX_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ExportError(f"LoRA rank {rank} is above the largest --max-lora-rank vLLM serves "
                      f"({VLLM_MAX_LORA_RANKS[-1]}); export --format merged instead")


def checkpoint_agent(checkpoint: str | Path) -> str:
    """The agent a ``<run>/checkpoints/step_N`` folder trains: the run folder's name
    (``<results>/agents/<agent>``), else the agent in its merged model's card."""
    run = Path(checkpoint).resolve().parent.parent
    if run.name in AGENT_NAMES:
        return run.name
    card = agents_model_files(agents_run_files(run)["model"])["card"]
    agent = json.loads(card.read_text()).get("agent") if card.is_file() else None
    if agent in AGENT_NAMES:
        return agent
    raise ExportError(f"cannot tell which agent {checkpoint} trains (its run folder is not "
                      f"named {' or '.join(AGENT_NAMES)}); pass --agent")


def export_adapter(checkpoint: str | Path, out_dir: str | Path, tcfg, agent: str,
                   name: str | None = None, card: dict | None = None,
                   device: str | None = None) -> Path:
    """Write the checkpoint's LoRA adapter into ``out_dir`` exactly as peft's
    ``save_pretrained`` writes it (adapter_config.json + adapter_model.safetensors, loadable
    with ``PeftModel.from_pretrained(base, out_dir)`` and by vLLM's ``--lora-modules``), plus
    the pathgen card (:func:`read_adapter_card`), atomically. The adapter is loaded onto
    ``tcfg.base_model`` first, so a checkpoint of other LoRA settings or another base model is
    refused here rather than by the server."""
    from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME

    if agent not in AGENT_NAMES:
        raise ExportError(f"agent must be one of {', '.join(AGENT_NAMES)}, got {agent!r}")
    model, _ = _checkpoint_model(checkpoint, tcfg, device)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        lora = json.loads((tmp / CONFIG_NAME).read_text())
        rank = max([int(lora["r"]), *map(int, (lora.get("rank_pattern") or {}).values())])
        write_json(agents_model_files(tmp)["card"], {
            **(card or {}), "format": ADAPTER_FORMAT, "base_model": tcfg.base_model,
            "agent": agent, "name": name or f"pathgen-{agent}", "checkpoint": str(checkpoint),
            "rank": rank, "max_lora_rank": vllm_max_lora_rank(rank),
            "lora": {"r": tcfg.lora_r, "alpha": tcfg.lora_alpha,
                     "target_modules": tcfg.lora_target_modules},
            "files": {"config": CONFIG_NAME, "weights": SAFETENSORS_WEIGHTS_NAME}})
        read_adapter_card(tmp)
    return out_dir


def read_adapter_card(folder: str | Path) -> dict:
    """What serving an adapter folder (``export --format adapter``) takes: ``base_model``
    (the model vLLM serves), ``name`` (its ``--lora-modules NAME=folder``), ``rank`` (the
    adapter's LoRA rank) and ``max_lora_rank`` (the smallest ``--max-lora-rank`` vLLM accepts
    for it; serving several adapters takes their maximum), plus ``agent``,
    ``target_modules`` and ``path`` (the folder). Needs neither torch nor peft. Raises
    ExportError when ``folder`` is not such a folder."""
    d = Path(folder)
    path = agents_model_files(d)["card"]
    if not path.is_file():
        raise ExportError(f"{d} is not an adapter folder of pathgen (no {path.name}; write one "
                          "with `pathgen agents export CHECKPOINT --format adapter --out DIR`)")
    card = json.loads(path.read_text())
    if card.get("format") != ADAPTER_FORMAT:
        raise ExportError(f"{d} holds a merged model, not an adapter: serve it as a model "
                          f"(`vllm serve {d}`), or export the checkpoint with --format adapter")
    missing = [f for f in card["files"].values() if not (d / f).is_file()]
    if missing:
        raise ExportError(f"adapter folder {d} lacks {', '.join(missing)}")
    return {"base_model": card["base_model"], "name": card["name"], "rank": card["rank"],
            "max_lora_rank": card["max_lora_rank"], "agent": card["agent"],
            "target_modules": card["lora"]["target_modules"], "path": str(d)}
