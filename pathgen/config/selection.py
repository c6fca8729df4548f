"""Config section for representative patch selection (prompt retrieval + k-means prototypes)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import Section


class SelectionConfig(Section):
    text_encoder: str | None = Field(
        None, description="Encoder whose text tower embeds the prompts; null = the encoder "
                          "that made the features (it must be the same CLIP).")
    device: str = Field("cpu", description="Device for the text tower ('cpu', 'cuda', 'auto').")
    prompts_file: Path | None = Field(
        None, description="Morphology prompts YAML; null = pathgen/prompts/morphology/tcga.yaml.")
    cancer_type: str = Field("generic", description="Cancer type (TCGA project code or alias) "
                                                    "for slides without one in the sample sheet.")
    cancer_type_column: str = Field("cancer_type", description="Sample-sheet column holding "
                                                               "each slide's cancer type.")
    unknown_cancer_type: Literal["generic", "error"] = Field(
        "generic", description="A type with no prompts: use the generic set (warning) or fail.")
    include_generic: bool = Field(False, description="Add the generic prompts to every type's.")
    prompt_top_k: int = Field(8, ge=0, description="Patches kept per prompt (top-k by cosine).")
    reports: Path | None = Field(
        None, description="CSV with slide_id or case_id, report: adds report-derived prompts.")
    report_extractor: Literal["keyword", "llm"] = Field(
        "keyword", description="'keyword' (offline rule-based, not an LLM) or 'llm' (the "
                               "summarize agent's text chat: captioning.agents.summarize, "
                               "which inherits captioning.backend and its section).")
    report_max_findings: int = Field(10, ge=1, description="Findings kept per report.")
    report_prompt_template: str = Field("an H&E image showing {finding}",
                                        description="Turns a finding into a prompt.")
    report_cache_dir: Path | None = Field(
        None, description="Findings cache (JSON per report hash); null = <selection>/report_findings.")
    kmeans_factor: float = Field(1.6, gt=0, description="k = ceil(sqrt(factor * n_patches)).")
    max_per_slide: int = Field(
        256, ge=0, description="Hard cap on the patches selected per slide (prompt hits + "
                               "prototypes); filled up to it when the slide has enough patches: "
                               "prompt hits first, k-means prototypes (round-robin over "
                               "clusters, ~cap/k each) fill the rest.")
    kmeans_n_init: int = Field(4, ge=1, description="sklearn KMeans n_init (fixed: deterministic).")
    seed: int = Field(0, description="KMeans random_state.")
    dedupe_cosine: float = Field(0.95, gt=0, le=1, description="Drop a patch whose cosine to an "
                                 "already kept one is above this (1 = off).")
    dedupe_min_keep: int = Field(
        32, ge=0, description="Dedup never leaves a slide with fewer than min(this, "
                              "max_per_slide, n) patches: below it the dropped near-duplicates "
                              "are restored (warning; near-identical embeddings).")
    image_format: Literal["jpeg", "png"] = Field("jpeg", description="Selected patch files.")
    jpeg_quality: int = Field(90, ge=1, le=100)
    image_size_px: int | None = Field(
        None, gt=0, description="Resize saved patches to this side; null = the patch size at "
                                "the tiling target mpp.")

    @model_validator(mode="before")
    @classmethod
    def _renamed_cap(cls, data):
        if isinstance(data, dict) and "cluster_cap" in data:
            raise ValueError("selection.cluster_cap was replaced by selection.max_per_slide, a "
                             "hard cap on all selected patches (prompt hits + prototypes); "
                             "rename the key (see docs/selection.md)")
        return data
