"""Helpers for rules/training.smk (kept here so the rules file holds only rules)."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, PathgenConfig
from ..paths import Layout


def train_inputs(cfg: PathgenConfig, baseline: str | None = None) -> list[str]:
    """Files the training stages read: CSV sources (empty `data` = the generated dataset and
    its card, or the baseline's pairs and card) and count.json of WebDataset sources."""
    L = Layout(cfg, baseline)
    default = ([str(p) for p in L.training_data_files().values()] if baseline
               else [str(L.dataset_csv), str(L.dataset_card)])
    files: list[str] = []
    for stage in cfg.training.stages:
        if not stage.data:
            files += default
        files += [d for d in stage.data if d.lower().endswith((".csv", ".tsv"))]
        files += [str(Layout.shards_count(d)) for d in stage.data
                  if ".tar" in d and Layout.shards_count(d).exists()]
    return sorted(set(files))


def slide_text_labels(cfg: PathgenConfig) -> Path:
    """The labels table of the slide_text baseline (the demo's when unset and running the demo)."""
    st = cfg.training.slide_text
    if st.labels is not None:
        return Path(st.labels)
    if cfg.uses_demo:
        return Layout(cfg).demo_labels
    raise ConfigError("training.baselines lists slide_text but training.slide_text.labels is not "
                      "set: give a CLAM dataset CSV (slide_id,label) of the captioned slides")


def baseline_data_inputs(cfg: PathgenConfig) -> dict[str, str]:
    """Inputs of rule baseline_data: the caption dataset (CSV, card) and the slide labels."""
    L = Layout(cfg)
    return {"csv": str(L.dataset_csv), "card": str(L.dataset_card),
            "labels": str(slide_text_labels(cfg))}


def trained_models(cfg: PathgenConfig) -> dict[str, str | None]:
    """Encoders whose weights this workflow trains -> their baseline (None = the main CLIP):
    training.register_as and, for each of training.baselines, `<register_as>-<baseline>`."""
    tc = cfg.training
    if not tc.enabled:
        return {}
    return {tc.register_as: None, **{tc.baseline_encoder(b): b for b in tc.baselines}}


def model_feature_encoders(cfg: PathgenConfig) -> list[str]:
    """Trained encoders the MIL benchmarks read features of (made by rule extract_model_features)."""
    mil = cfg.evaluation.mil
    if not mil.enabled or not mil.tasks:
        return []
    trained = trained_models(cfg)
    return [e for e in mil.encoders if e in trained and e != cfg.features.encoder]
