"""The two agent stages on plain paths (used by `pathgen agents` and rules/agents.smk):
build-data from teacher inputs, and train + export of one agent from a build-data folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..config.agents import AgentsDataConfig
from ..config.captioning import CaptioningConfig
from .build import build_data
from .files import agents_data_files, agents_run_files
from .teacher import pairs_from_backend, pairs_from_files

log = logging.getLogger(__name__)
LLM_EDIT_MAX_TOKENS = 512  # reply length of the llm corrupter (the text chat's former default)


def build_stage(dcfg: AgentsDataConfig, ccfg: CaptioningConfig, inputs: list[str | Path],
                out_dir: str | Path, patches_root: str | Path | None,
                target_mpp: float | None = None) -> dict:
    """``dcfg``: agents.data; ``ccfg``: captioning (the teacher backend, the llm corrupter's
    chat and the prompt templates). Teacher 'captions': ``inputs`` are caption JSONLs or
    descriptions files; 'backend': selection CSVs the captioning backend describes, their
    patches at ``target_mpp`` µm/px (tiling's target)."""
    from ..captioning.prompts import load_templates

    if dcfg.teacher == "backend":
        if patches_root is None:
            raise ValueError("agents.data.teacher 'backend' needs the patches folder the selection "
                             "CSVs' 'image' column is relative to (--patches-root)")
        pairs, skipped = pairs_from_backend(inputs, patches_root, ccfg, target_mpp, dcfg.min_words)
        teacher = f"backend:{ccfg.backend}:{ccfg.model_id()}"
    else:
        pairs, skipped = pairs_from_files(inputs, patches_root, dcfg.teacher_field, dcfg.min_words)
        teacher = f"files:{dcfg.teacher_field}"
    image_folder = patches_root if patches_root is not None else Path(inputs[0]).parent
    templates = load_templates(ccfg.prompt_version, ccfg.prompts_dir)
    if dcfg.corrupter != "llm":
        return build_data(pairs, out_dir, dcfg, templates, image_folder, teacher=teacher, skipped=skipped)
    from ..instruct.chat import TextChat, chat_settings

    # the summarize agent's text model writes the edits (one reply ~ one description)
    with TextChat(chat_settings(ccfg, "agents.data.corrupter 'llm'"), LLM_EDIT_MAX_TOKENS) as chat:
        return build_data(pairs, out_dir, dcfg, templates, image_folder, chat=chat, teacher=teacher,
                          skipped=skipped)


def read_data_card(data_dir: str | Path) -> dict:
    path = agents_data_files(Path(data_dir))["card"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {data_dir} is not a build-data folder "
                                "(run `pathgen agents build-data ... --out DIR` first)")
    return json.loads(path.read_text())


def train_stage(data_dir: str | Path, agent: str, run_dir: str | Path, tcfg, restart: bool = False,
                export: bool = True, stop_after: int | None = None) -> dict:
    """Train (resuming) one agent on ``<agent>_train/val.json`` of a build-data folder, then
    merge and export it to ``<run_dir>/model``. Returns the training summary (+ model)."""
    from .export import export_merged
    from .train import train_agent

    files, card = agents_data_files(Path(data_dir)), read_data_card(data_dir)
    summary = train_agent(files[f"{agent}_train"], files[f"{agent}_val"], run_dir, tcfg,
                          card["image_folder"], restart=restart, stop_after=stop_after)
    if export and summary["done"]:
        model_dir = agents_run_files(Path(run_dir))["model"]
        export_merged(summary["checkpoint"], model_dir, tcfg, card={
            "agent": agent, "steps": summary["step"], "train_loss": summary["train_loss"],
            "val_loss": summary["val_loss"], "data": {"n": card["n"], "teacher": card["teacher"],
                                                      "corrupter": card["corrupter"]}})
        summary["model"] = str(model_dir)
        log.info("%s agent exported to %s (captioning.transformers.model: %s)", agent, model_dir,
                 model_dir)
    return summary
