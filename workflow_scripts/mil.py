"""Snakemake script for rules mil_splits, mil and mil_table (logic: pathgen.mil.api)."""

import torch

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.mil import api

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
cfg = validate_config(sm.config)
if sm.rule == "mil_splits":
    api.task_splits(cfg, sm.wildcards.task)
elif sm.rule == "mil":
    torch.set_num_threads(max(1, sm.threads))
    api.task_benchmark(cfg, sm.wildcards.task, sm.wildcards.encoder, sm.wildcards.model)
else:
    api.mil_table(sm.input.metrics, sm.output.csv, sm.output.md)
