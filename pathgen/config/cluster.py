"""Config section for running the workflow on a cluster (SLURM profile in slurm/).

Snakemake submits one job per rule instance unless rules share a `group`; with thousands of
slides that would be tens of thousands of SLURM jobs. The workflow (rules/common.smk) applies
``groups``/``group_components`` below as Snakemake's ``--groups``/``--group-components``
(command-line values win), so e.g. 64 slides' tile + extract_features chains run inside one
SLURM job on one GPU, one after another.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import Section

# Per-slide rules and the group each joins. Rules that do not exist in the workflow are ignored.
DEFAULT_GROUPS = {
    "make_demo_slide": "slide",
    "tile": "slide",
    "extract_features": "slide",
    "select_patches": "caption",
    "caption": "caption",
}


class ClusterConfig(Section):
    groups: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_GROUPS),
        description="Rule name -> Snakemake group. Per-slide rules of one group and one slide run "
                    "in one cluster job; `group_components` then packs several slides per job.")
    group_components: dict[str, int] = Field(
        default_factory=lambda: {"slide": 64, "caption": 64},
        description="Group name -> slides (connected components) per cluster job "
                    "(Snakemake --group-components). 1000 slides / 64 = 16 jobs per group.")
    max_group_runtime: int | None = Field(
        None, ge=1,
        description="Minutes. When set, a group's batch is lowered so that batch x the summed "
                    "per-slide `resources.<rule>.runtime` of its rules fits this wall-time "
                    "(e.g. your partition's MaxTime).")
    local_rules: list[str] = Field(
        default_factory=lambda: ["demo_labels", "mil_splits", "mil_table", "zeroshot_table",
                                 "build_report"],
        description="Light aggregate rules that run on the submitting node instead of as "
                    "cluster jobs (Snakemake `localrules`).")

    @model_validator(mode="after")
    def _checks(self):
        bad = {g: n for g, n in self.group_components.items() if n < 1}
        if bad:
            raise ValueError(f"cluster.group_components must be >= 1, got {bad}")
        return self

    def batch_size(self, group: str, per_slide_runtime: int | None = None) -> int:
        """Slides per job for ``group``, capped by ``max_group_runtime`` when both are known."""
        n = self.group_components.get(group, 1)
        if self.max_group_runtime and per_slide_runtime:
            n = min(n, max(1, self.max_group_runtime // per_slide_runtime))
        return n
