"""Snakemake script of the chunk rule for stage `caption` (logic: pathgen.chunk_run and
pathgen.chunk_stages.caption)."""

import pathgen.chunk_stages.caption  # noqa: F401 (what this rule's env must provide)
from pathgen.chunk_run import run_chunk_job

run_chunk_job("caption", snakemake)  # noqa: F821 (injected by Snakemake)
