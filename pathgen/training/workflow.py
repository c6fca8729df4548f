"""Helpers for rules/training.smk (kept here so the rules file holds only rules)."""

from __future__ import annotations

from ..config import PathgenConfig
from ..paths import Layout


def train_inputs(cfg: PathgenConfig) -> list[str]:
    """Files the training stages read: CSV sources (empty `data` = the generated dataset and
    its card) and count.json of WebDataset sources."""
    L = Layout(cfg)
    files: list[str] = []
    for stage in cfg.training.stages:
        if not stage.data:
            files += [str(L.dataset_csv), str(L.dataset_card)]
        files += [d for d in stage.data if d.lower().endswith((".csv", ".tsv"))]
        files += [str(Layout.shards_count(d)) for d in stage.data
                  if ".tar" in d and Layout.shards_count(d).exists()]
    return sorted(set(files))
