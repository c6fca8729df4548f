"""Snakemake script of every per-slide chunk rule (logic: pathgen.runner.job; the stage is the
rule's `stage` param, declared in pathgen/<area>/chunk_stage.py; the job reads only its params
and inputs)."""

from pathgen.runner import run_chunk_job

run_chunk_job(snakemake.params.stage, snakemake)  # noqa: F821 (injected by Snakemake)
