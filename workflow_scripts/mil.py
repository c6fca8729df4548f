"""Snakemake script for rules mil_splits, mil and mil_table (logic: pathgen.mil.api)."""

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.mil import api
from pathgen.slide_state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
cfg = validate_config(sm.config)
# Slides whose features finished (chunk outcomes); None = a folder of the user's own features.
chunks = list(sm.input.get("features", [])) if hasattr(sm.input, "get") else []
available = set(slides_with_status(chunks)) if chunks else None
if sm.rule == "mil_splits":
    api.task_splits(cfg, sm.wildcards.task, available)
elif sm.rule == "mil":
    import torch

    torch.set_num_threads(max(1, sm.threads))
    api.task_benchmark(cfg, sm.wildcards.task, sm.wildcards.encoder, sm.wildcards.model,
                       available=available)
else:
    api.mil_table(sm.input.metrics, sm.output.csv, sm.output.md)
