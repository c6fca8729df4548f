"""Config sections for where slides come from and the embedded demo."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from .base import Section

# Common WSI extensions (OpenSlide-readable); matched case-insensitively and recursively.
DEFAULT_PATTERNS = [f"**/*.{ext}" for ext in
                    ("svs", "tif", "tiff", "ndpi", "mrxs", "scn", "vms", "bif", "dcm")]


class SlidesConfig(Section):
    dir: Path | None = Field(None, description="Folder searched recursively for slides.")
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_PATTERNS),
                                description="Glob patterns under `dir` (case-insensitive).")
    sample_sheet: Path | None = Field(
        None, description="CSV with slide_id,path (+ optional mpp, case_id, label). "
                          "Used instead of `dir` when set.")
    mpp_overrides: Path | None = Field(
        None, description="CSV slide_id,mpp: per-slide level-0 µm/px, wins over slide metadata.")
    default_mpp: float | None = Field(
        None, gt=0, description="µm/px for slides whose metadata has none (and no override).")

    @model_validator(mode="after")
    def _one_source(self):
        if self.dir is not None and self.sample_sheet is not None:
            raise ValueError("set either slides.dir or slides.sample_sheet, not both")
        return self


class DemoConfig(Section):
    enabled: bool = Field(True, description="Generate the synthetic Aperio demo slides and use them.")
    out_dir: Path = Field(Path("results/demo"), description="Where demo slides and ground truth go.")
    n_slides: int = Field(24, ge=1, le=1000)
    seed: int = 0
    width_px: int = Field(4096, ge=256, description="Level-0 width of each demo slide.")
    height_px: int = Field(3072, ge=256)
    mpp: float = Field(0.5, gt=0, description="Level-0 µm/px written into the Aperio header.")
    holdout_fraction: float = Field(
        0.25, ge=0, lt=1,
        description="Share of demo slides kept out of captioning/training; their regions make "
                    "the demo zero-shot benchmark.")
    app_mag: float | None = Field(
        None, gt=0, description="AppMag written into the Aperio header (default: 10 / mpp).")
    tile_size: int = Field(256, ge=16, multiple_of=16, description="SVS tile side in px.")
    jpeg_quality: int = Field(85, ge=1, le=100, description="JPEG quality of the SVS tiles.")
    zeroshot_min_purity: float = Field(
        0.9, gt=0.5, le=1, description="A benchmark patch is kept when this share of its "
                                       "footprint is one ground-truth class.")
    zeroshot_max_per_class: int = Field(120, ge=1, description="Cap on benchmark patches per class.")
    zeroshot_stride: float = Field(
        0.25, gt=0, le=1, description="Candidate patch stride as a fraction of the patch side.")
    zeroshot_template: str = Field("An H&E image of {}.",
                                   description="Single prompt template of the demo benchmark.")
