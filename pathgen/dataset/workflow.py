"""Config -> params of rule build_dataset (glue: takes the whole config; imported by the
Snakefile at parse time). The job (workflow_scripts/build_dataset.py) gets only these."""

from __future__ import annotations

from ..config import PathgenConfig
from ..paths import Layout
from .build import run_file_ids


def build_dataset_params(cfg: PathgenConfig) -> dict:
    """Everything that shapes the dataset besides the caption files, so that a change of any
    reruns build_dataset: the dataset settings, the file ids themselves (sample sheet
    `file_id` column + dataset.file_ids, read now), and the folders of the per-slide captions
    (named by the captioning tag) and features (read for dataset.dedup_cosine). Folders are
    Path values: Snakemake's lint takes a str param under an output folder for a file prefix."""
    L = Layout(cfg)
    return {
        "images_root": str(cfg.dataset.images_root or L.selection_patches_root()),
        "settings": cfg.dataset.model_dump(mode="json"),
        "file_ids": run_file_ids(cfg.slides.sample_sheet, cfg.dataset.file_ids),
        "captions_dir": L.captions_dir(),
        "features_dir": L.features_dir(),
    }
