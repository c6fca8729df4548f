"""Snakemake script of the chunk rule for stage `caption` (logic: pathgen.runner.job and
pathgen.captioning.chunk_stage; the job reads only its params and inputs)."""

import pathgen.captioning.chunk_stage  # noqa: F401 (what this rule's env must provide)
from pathgen.runner import run_chunk_job

run_chunk_job("caption", snakemake)  # noqa: F821 (injected by Snakemake)
