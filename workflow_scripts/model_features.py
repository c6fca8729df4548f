"""Snakemake script for rule extract_model_features (logic: pathgen.training.workflow.run_model_features:
the trained model and the features settings come from the rule's params). On a local run the
job first claims a free GPU (pathgen.gpu_slots, in the chunk runner), before torch."""

import pathgen.features.chunk_stage  # noqa: F401 (what this rule's env must provide)
from pathgen.training.workflow import run_model_features

run_model_features(snakemake)  # noqa: F821 (injected by Snakemake)
