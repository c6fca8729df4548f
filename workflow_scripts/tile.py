"""Snakemake script of the chunk rule for stage `tile` (logic: pathgen.chunk_run and
pathgen.chunk_stages.tile)."""

import pathgen.chunk_stages.tile  # noqa: F401 (what this rule's env must provide)
from pathgen.chunk_run import run_chunk_job

run_chunk_job("tile", snakemake)  # noqa: F821 (injected by Snakemake)
