"""Snakemake script of the chunk rule for stage `features` (logic: pathgen.chunk_run and
pathgen.chunk_stages.features)."""

import pathgen.chunk_stages.features  # noqa: F401 (what this rule's env must provide)
from pathgen.chunk_run import run_chunk_job

run_chunk_job("features", snakemake)  # noqa: F821 (injected by Snakemake)
