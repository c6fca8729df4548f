"""Snakemake script of the chunk rule for stage `demo` (logic: pathgen.chunk_run)."""

from pathgen.chunk_run import run_chunk_job

run_chunk_job("demo", snakemake)  # noqa: F821 (injected by Snakemake)
