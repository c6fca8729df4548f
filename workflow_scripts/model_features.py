"""Snakemake script for rule extract_model_features (logic: pathgen.training.model_features)."""

import pathgen.chunk_stages.features  # noqa: F401 (what this rule's env must provide)
from pathgen.training.model_features import run_model_features

run_model_features(snakemake)  # noqa: F821 (injected by Snakemake)
