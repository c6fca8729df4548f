"""Helpers for rules/training.smk (kept here so the rules file holds only rules)."""

from __future__ import annotations

from pathlib import Path

from ..config import PathgenConfig


def train_inputs(cfg: PathgenConfig) -> list[str]:
    """Files the training stages read: CSV sources (empty `data` = the generated dataset and
    its card) and count.json of WebDataset sources."""
    dataset = cfg.results_dir / "dataset"
    files: list[str] = []
    for stage in cfg.training.stages:
        if not stage.data:
            files += [str(dataset / "open_clip.csv"), str(dataset / "dataset_card.json")]
        files += [d for d in stage.data if d.lower().endswith((".csv", ".tsv"))]
        files += [str(Path(d).parent / "count.json") for d in stage.data
                  if ".tar" in d and (Path(d).parent / "count.json").exists()]
    return sorted(set(files))
