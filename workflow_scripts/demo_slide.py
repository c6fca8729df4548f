"""Snakemake script of the chunk rule for stage `demo` (logic: pathgen.chunk_run and
pathgen.chunk_stages.demo)."""

import pathgen.chunk_stages.demo  # noqa: F401 (what this rule's env must provide)
from pathgen.chunk_run import run_chunk_job

run_chunk_job("demo", snakemake)  # noqa: F821 (injected by Snakemake)
