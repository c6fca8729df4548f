"""Config section for training the describe/revise agents (``pathgen agents``; rules/agents.smk).

Off by default. ``data`` shapes the SFT files built from (patch, teacher description) pairs;
``train`` shapes the LoRA fine-tuning of a Hugging Face vision-language model and its merged
export, which the transformers backend (and vLLM) then load by folder path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from .base import Section

# <results_dir>/agents: where the agents rules train (Layout.agents_dir; the files inside are
# named in pathgen/agents/files.py). Here because validation checks captioning against it.
AGENTS_RESULTS_DIR = "agents"

AgentName = Literal["describe", "revise"]
EditKind = Literal["add", "delete", "modify"]


class AgentsDataConfig(Section):
    teacher: Literal["captions", "backend"] = Field(
        "captions", description="Where the teacher descriptions come from: 'captions' = the "
        "caption records of this run (their `teacher_field` text); 'backend' = the configured "
        "captioning backend describes the selected patches anew.")
    teacher_field: Literal["describe", "revise"] = Field(
        "describe", description="Caption-record field used as the teacher description.")
    corrupter: Literal["rules", "llm"] = Field(
        "rules", description="Who corrupts descriptions for the revise data: 'rules' = one "
        "controlled edit over a vocabulary (rule-based, not a language model); 'llm' = the "
        "captioning backend's text chat writes the edit (falls back to rules, labelled).")
    edit_kinds: list[EditKind] = Field(
        ["add", "delete", "modify"], min_length=1,
        description="Edits drawn for the revise data: add an absent feature, delete a present "
                    "one, modify an attribute (cell type, density, arrangement, staining).")
    val_fraction: float = Field(0.2, ge=0, lt=1, description="Share of slides held out as "
                                                            "validation (split by slide).")
    min_words: int = Field(8, ge=1, description="Teacher descriptions with fewer words are "
                                                "skipped.")
    seed: int = 0


class AgentsTrainConfig(Section):
    base_model: str = Field("llava-hf/llava-1.5-7b-hf", description="HF id or local folder of "
                            "the image-text-to-text model to fine-tune (LLaVA, Qwen2-VL classes).")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1,
        description="Linear layers of the language model that get LoRA adapters (the vision "
                    "tower is left frozen and adapter-free).")
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(10, ge=0)
    max_steps: int = Field(1000, ge=1, description="Optimizer steps.")
    batch_size: int = Field(4, ge=1)
    grad_accum_steps: int = Field(1, ge=1)
    max_length: int = Field(2048, ge=16, description="Tokens per example (image tokens "
                                                     "included); longer answers are cut.")
    eval_every: int = Field(100, ge=1, description="Validation loss every N steps (and at "
                                                   "the end).")
    save_every: int = Field(100, ge=1, description="Resumable checkpoint every N steps.")
    keep_checkpoints: int = Field(2, ge=1, description="Newest checkpoints kept.")
    gradient_checkpointing: bool = False
    num_workers: int = Field(2, ge=0, description="DataLoader workers encoding images on GPU "
                                                  "runs (0 on CPU).")
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda:0', ...")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Base weights; 'auto' = bfloat16 on GPU, float32 on CPU.")
    trust_remote_code: bool = False
    seed: int = 0

    @field_validator("lora_target_modules")
    @classmethod
    def _plain_names(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not n.replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"agents.train.lora_target_modules must be module names such as "
                             f"q_proj (no dots or patterns), got {bad}")
        return names


class AgentTrainingConfig(Section):
    """The top-level ``agents:`` section (training them; ``captioning.agents`` picks the
    model each agent runs with)."""

    enabled: bool = Field(False, description="Build agent SFT data, LoRA-train and export the "
                                             "agents in the workflow (rules/agents.smk).")
    agents: list[AgentName] = Field(["describe", "revise"], min_length=1,
                                    description="Which agents the workflow trains.")
    data: AgentsDataConfig = Field(default_factory=AgentsDataConfig)
    train: AgentsTrainConfig = Field(default_factory=AgentsTrainConfig)


def self_training_conflict(cfg) -> str | None:
    """Why ``cfg`` (PathgenConfig) would caption with the very models its agents rules train,
    or None. In one run that is a cycle (captions -> data -> training -> captions) and the
    caption jobs could start before the models exist."""
    if not cfg.agents.enabled:
        return None
    trained = (Path(cfg.results_dir) / AGENTS_RESULTS_DIR).resolve()  # Layout.agents_dir
    for role in ("describe", "revise", "summarize"):
        spec = cfg.captioning.agent(role)
        for model in (spec.model, getattr(spec.cfg, "text_model", None)):
            if spec.backend == "transformers" and model and trained in Path(model).resolve().parents:
                return (f"captioning ({role} agent) uses {model}, a model the agents rules of this "
                        "same run train from its captions; caption with it in a run with "
                        "agents.enabled: false (see docs/captioning.md 'Training the agents')")
    return None
