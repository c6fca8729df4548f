"""Per-rule compute requests, read by the rules' `resources:` and by the SLURM profile.

For the chunked per-slide rules (CHUNKED_RULES) every number is **per slide**: a chunk job
asks for one slide's threads/memory/GPU (its slides run one after another) and
min(cluster.max_job_minutes, members x runtime) minutes.

Defaults are sized for one 40x TCGA diagnostic slide (~100k x 80k px at 0.25 µm/px, ~8
gigapixels, 5-9k tissue patches of 672 px = 168 µm at 30-50 % tissue, up to ~15k for a slide
full of tissue; docs/scale.md has the arithmetic). Generous on purpose: a chunk that overruns
its walltime loses only the slide in flight (finished slides are kept):
  * tile: measured 3.9 s and 248 MB peak for a 1.8-gigapixel slide (bench/patch_read.py,
    README) -> ~20 s for 8 Gpx; 10 min and 4 GB leave room for slow network storage.
  * extract_features: reading is the bound: measured 111 patches/s with 2 reading workers
    (bench/patch_read.py) -> ~1-2.3 min for 7-15k patches; ViT-L/14 at 224 px encodes ~1,000
    img/s in fp16 on an A100 (open_clip's published benchmark table, estimated) -> 15 s.
    20 min, 16 GB, 1 GPU, 8 threads (reading workers).
  * select_patches: k-means on 15k x 768 floats and 256 JPEG crops: ~1 min on CPU; 10 min, 8 GB.
  * caption: 256 patches x (describe + revise + summarize) through a shared vLLM server;
    LLaVA-1.5-7B on one A100 sustains ~1-2k generated tokens/s (vLLM's published
    throughput, estimated) -> 256 x ~400 tokens = ~1-2 min alone, more when the server is
    shared; 20 min, 4 GB, no GPU (the model runs in the server) unless the backend is the
    local `transformers` one.
"""

from __future__ import annotations

from pydantic import Field

from .base import Section

# Per-slide stages that run one job per slide chunk (rules/*.smk, pathgen/chunks.py).
CHUNKED_RULES = ("make_demo_slide", "tile", "extract_features", "select_patches", "caption")
# Rules that ask for another rule's resources (rules/training.smk): the slide-text baseline
# trains like the main CLIP; a trained CLIP's features, and those of another MIL encoder
# (rules/mil.smk), are extracted per chunk like the features encoder's.
RESOURCES_OF = {"train_baseline": "train_clip", "extract_model_features": "extract_features",
                "extract_encoder_features": "extract_features"}


class RuleResources(Section):
    threads: int = Field(1, ge=1)
    mem_mb: int = Field(2000, ge=100)
    runtime: int = Field(60, ge=1, description="Minutes (Snakemake's `runtime`); per slide for "
                                               "the chunked per-slide rules.")
    gpu: int = Field(0, ge=0, description="GPUs per job (0 = CPU rule).")
    gpu_model: str | None = None
    slurm_partition: str | None = None
    cpus_per_task: int | None = Field(None, ge=1)


def _default_resources() -> dict[str, RuleResources]:
    return {
        "default": RuleResources(),
        "make_demo_slide": RuleResources(mem_mb=2000, runtime=5),
        "tile": RuleResources(mem_mb=4000, runtime=10, threads=2),
        "extract_features": RuleResources(gpu=1, mem_mb=16000, runtime=20, threads=8),
        "select_patches": RuleResources(mem_mb=8000, runtime=10, threads=2),
        "caption": RuleResources(mem_mb=4000, runtime=20, threads=2),
        "train_clip": RuleResources(gpu=1, mem_mb=32000, runtime=1440, threads=8),
        "zeroshot": RuleResources(gpu=1, mem_mb=16000, runtime=120, threads=4),
        "mil": RuleResources(gpu=1, mem_mb=16000, runtime=240, threads=2),
        # holds every caption record (~7.7 KB each, measured): ~14 GB for 1.9 M records
        "build_dataset": RuleResources(mem_mb=24000, runtime=720, threads=2),
        # LoRA on a 7B VLM in bf16: ~16 GB of weights + activations; hours per 1k steps
        "agents_build_data": RuleResources(mem_mb=4000, runtime=120, threads=2),
        "agents_train": RuleResources(gpu=1, mem_mb=64000, runtime=1440, threads=8),
    }


ResourcesConfig = dict[str, RuleResources]
default_resources = _default_resources
