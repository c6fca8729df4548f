"""Snakemake script of the chunk rule for stage `select` (logic: pathgen.chunk_run and
pathgen.chunk_stages.select)."""

import pathgen.chunk_stages.select  # noqa: F401 (what this rule's env must provide)
from pathgen.chunk_run import run_chunk_job

run_chunk_job("select", snakemake)  # noqa: F821 (injected by Snakemake)
