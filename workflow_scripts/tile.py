"""Snakemake script of the chunk rule for stage `tile` (logic: pathgen.chunk_run)."""

from pathgen.chunk_run import run_chunk_job

run_chunk_job("tile", snakemake)  # noqa: F821 (injected by Snakemake)
