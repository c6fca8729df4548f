"""Config section for the unit of work (slide chunks) and cluster submission limits.

The per-slide stages run as one Snakemake job per *chunk* of slides and stage (see
pathgen/chunks.py): 10,000 slides make ~157 jobs per stage instead of 10,000, and each job
is one SLURM submission that asks for one slide's resources (one GPU, that step's memory and
CPUs) and the summed per-slide walltime, capped by ``max_job_minutes``.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import Section

# Keys of the former Snakemake-group batching (they made one submission ask for N GPUs).
_REMOVED = {"groups": "chunk_size", "group_components": "chunk_size",
            "max_group_runtime": "max_job_minutes"}


class ClusterConfig(Section):
    chunk_size: int = Field(
        64, ge=1,
        description="Slides per chunk: the per-slide stages (demo slides, tile, extract_features, "
                    "select_patches, caption) run as one job per chunk and stage. Membership is "
                    "recorded in <results_dir>/chunks.tsv and never moves an existing slide; new "
                    "slides fill the last chunk, then open new ones. Lowered automatically so a "
                    "chunk's summed per-slide runtime fits `max_job_minutes`. 1 = one job per slide.")
    max_job_minutes: int = Field(
        1440, ge=1,
        description="Cap on every submission's requested walltime (your partition's MaxTime or "
                    "less). A chunk job asks for min(max_job_minutes, members x the rule's "
                    "per-slide `resources.<rule>.runtime`).")
    gpu_partition: str | None = Field(
        None, description="SLURM partition for rules that request a GPU (unless the rule's "
                          "`resources.<rule>.slurm_partition` says otherwise); null = the "
                          "cluster's default partition.")
    cpu_partition: str | None = Field(
        None, description="SLURM partition for rules without a GPU; null = the default partition.")
    local_rules: list[str] = Field(
        default_factory=lambda: ["demo_labels", "mil_splits", "mil_table", "zeroshot_table",
                                 "build_report"],
        description="Light aggregate rules that run on the submitting node instead of as "
                    "cluster jobs (Snakemake `localrules`).")

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data):
        if isinstance(data, dict):
            for key, new in _REMOVED.items():
                if key in data:
                    raise ValueError(
                        f"cluster.{key} was removed: per-slide stages now run in slide chunks "
                        f"(one job per chunk and stage, one GPU per job); set cluster.{new} "
                        "instead (see docs/cluster.md)")
        return data

    def effective_chunk_size(self, per_slide_minutes: int) -> int:
        """`chunk_size`, lowered so chunk x the heaviest per-slide runtime fits max_job_minutes."""
        return max(1, min(self.chunk_size, self.max_job_minutes // max(1, per_slide_minutes)))
