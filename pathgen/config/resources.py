"""Per-rule compute requests, read by the rules' `resources:` and by the SLURM profile."""

from __future__ import annotations

from pydantic import Field

from .base import Section


class RuleResources(Section):
    threads: int = Field(1, ge=1)
    mem_mb: int = Field(2000, ge=100)
    runtime: int = Field(60, ge=1, description="Minutes (Snakemake's `runtime`).")
    gpu: int = Field(0, ge=0, description="GPUs per job (0 = CPU rule).")
    gpu_model: str | None = None
    slurm_partition: str | None = None
    cpus_per_task: int | None = Field(None, ge=1)


def _default_resources() -> dict[str, RuleResources]:
    gpu = dict(gpu=1, mem_mb=16000, runtime=240, threads=2)
    return {
        "default": RuleResources(),
        "tile": RuleResources(mem_mb=2000, runtime=30),
        "extract_features": RuleResources(**gpu),
        "select_patches": RuleResources(mem_mb=4000, runtime=30),
        "caption": RuleResources(**gpu),
        "train_clip": RuleResources(gpu=1, mem_mb=32000, runtime=1440, threads=2),
        "zeroshot": RuleResources(**gpu),
        "mil": RuleResources(gpu=1, mem_mb=16000, runtime=240, threads=1),
    }


ResourcesConfig = dict[str, RuleResources]
default_resources = _default_resources
