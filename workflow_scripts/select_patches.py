"""Snakemake script of the chunk rule for stage `select` (logic: pathgen.chunk_run)."""

from pathgen.chunk_run import run_chunk_job

run_chunk_job("select", snakemake)  # noqa: F821 (injected by Snakemake)
