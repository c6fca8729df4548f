"""File names of the trained agents (``<results>/agents/``: ``data/`` SFT files,
``<agent>/`` LoRA runs with ``model/`` the merged export).

No config import (the results subfolder itself is ``pathgen.config.agents.AGENTS_RESULTS_DIR``:
the config checks that captioning does not use the models trained there).
"""

from __future__ import annotations

from pathlib import Path

AGENTS_DATA_DIR = "data"                    # agents/data/: build-data output
AGENTS_DATA_CARD_JSON = "agents_data_card.json"
AGENTS_LOSS_CSV = "loss.csv"
AGENTS_RUN_JSON = "run.json"                # settings fingerprint of a training run
AGENTS_TRAINER_STATE_PT = "trainer_state.pt"  # optimizer, scheduler, RNG and step of a checkpoint
AGENTS_MODEL_CARD_JSON = "pathgen_agent.json"  # beside the merged weights: base model, steps, losses
AGENTS_CHECKPOINTS_DIR = "checkpoints"
AGENTS_MODEL_DIR = "model"                  # the merged export
SFT_AGENTS = ("describe", "revise")         # the agents build-data writes SFT files for


def agents_sft_files(out_dir: str | Path, agent: str) -> dict[str, Path]:
    """One agent's train/val LLaVA JSON in a build-data folder, + its card (``agent`` may
    be the ``{agent}`` wildcard)."""
    d = Path(out_dir)
    return {"train": d / f"{agent}_train.json", "val": d / f"{agent}_val.json",
            "card": d / AGENTS_DATA_CARD_JSON}


def agents_data_files(out_dir: str | Path) -> dict[str, Path]:
    """SFT files of build-data in ``out_dir``: ``<agent>_<split>`` -> LLaVA JSON, + card."""
    files = {f"{a}_{s}": p for a in SFT_AGENTS
             for s, p in agents_sft_files(out_dir, a).items() if s != "card"}
    return {**files, "card": Path(out_dir) / AGENTS_DATA_CARD_JSON}


def agents_run_files(run_dir: str | Path) -> dict[str, Path]:
    """One agent's training folder: checkpoints/, loss.csv, run.json, model/."""
    d = Path(run_dir)
    return {"checkpoints": d / AGENTS_CHECKPOINTS_DIR, "loss_csv": d / AGENTS_LOSS_CSV,
            "run": d / AGENTS_RUN_JSON, "model": d / AGENTS_MODEL_DIR}


def agents_checkpoint(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / AGENTS_CHECKPOINTS_DIR / f"step_{step:07d}"


def agents_trainer_state(checkpoint: str | Path) -> Path:
    return Path(checkpoint) / AGENTS_TRAINER_STATE_PT


def agents_model_files(model_dir: str | Path) -> dict[str, Path]:
    """The exported (merged) model folder's declared files."""
    d = Path(model_dir)
    # config.json is Hugging Face's name for any model folder, not a pathgen output name
    return {"config": d / "config.json", "card": d / AGENTS_MODEL_CARD_JSON}
