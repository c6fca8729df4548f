"""Snakemake script for rule extract_model_features (logic: pathgen.training.workflow.run_model_features:
the trained model and the features settings come from the rule's params)."""

import pathgen.chunk_stages.features  # noqa: F401 (what this rule's env must provide)
from pathgen.training.workflow import run_model_features

run_model_features(snakemake)  # noqa: F821 (injected by Snakemake)
