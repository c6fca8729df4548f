"""Config -> params of rules agents_build_data / agents_train (glue: takes the whole config;
imported by the Snakefile at parse time, so no torch here). The jobs
(workflow_scripts/agents_*.py) get only these, and the rules rerun when any changes. Folders
are Path values: Snakemake's lint takes a str param under an input/output for a file prefix."""

from __future__ import annotations

from ..config import PathgenConfig
from ..paths import Layout


def build_data_params(cfg: PathgenConfig) -> dict:
    """agents.data; captioning (the teacher backend, the llm corrupter's chat, the prompt
    templates) and tiling's target µm/px (the prompts' field of view); the folders of the
    caption records (teacher 'captions') and of the selection CSVs and patches ('backend')."""
    L = Layout(cfg)
    return {
        "out_dir": L.agents_data_dir,
        "patches_root": L.selection_patches_root(),
        "captions_dir": L.captions_dir(),
        "selection_dir": L.selection_dir(),
        "settings": {
            "data": cfg.agents.data.model_dump(mode="json"),
            "captioning": cfg.captioning.model_dump(mode="json"),
            "target_mpp": cfg.tiling.geometry()[1],
        },
    }


def train_params(cfg: PathgenConfig) -> dict:
    """The build-data folder and agents.train (the agent's run folder: get_agents_run_dir,
    rules/common.smk, from the {agent} wildcard)."""
    return {"data_dir": Layout(cfg).agents_data_dir,
            "settings": cfg.agents.train.model_dump(mode="json")}
