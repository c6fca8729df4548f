"""Snakemake script of the chunk rule for stage `features` (logic: pathgen.runner.job and
pathgen.features.chunk_stage; the job reads only its params and inputs)."""

import pathgen.features.chunk_stage  # noqa: F401 (what this rule's env must provide)
from pathgen.runner import run_chunk_job

run_chunk_job("features", snakemake)  # noqa: F821 (injected by Snakemake)
