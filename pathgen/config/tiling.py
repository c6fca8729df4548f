"""Config section for tissue segmentation and the patch grid (physical units throughout)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Section

# Named geometries. PathGen-1.6M read 672 px at level 0 of ~0.25 µm/px TCGA slides.
PRESETS = {
    "pathgen": {"patch_size_px": 672, "target_mpp": 0.25},
}
# The built-in geometry (the PathGen-1.6M method's); its values also fill the size keys a
# config leaves out when it sets others (e.g. only target_mpp: 672 px at that mpp).
DEFAULT_PRESET = "pathgen"
SIZE_KEYS = ("patch_size_um", "patch_size_px", "target_mpp", "target_magnification")


class SegmentationConfig(Section):
    seg_mpp: float = Field(8.0, gt=0, description="Resolution (µm/px) the tissue mask is computed at; "
                                                  "the closest pyramid level is read and resized.")
    saturation_threshold: Literal["otsu"] | int = Field(
        "otsu", description="'otsu' or a fixed 0-255 threshold on HSV saturation.")
    min_saturation: int = Field(
        15, ge=0, le=255, description="Otsu thresholds below this are raised to it "
                                      "(keeps a blank slide blank).")
    median_blur_um: float = Field(56.0, ge=0, description="Median filter size in µm.")
    close_um: float = Field(32.0, ge=0, description="Morphological closing size in µm.")
    min_tissue_area_um2: float = Field(20000.0, ge=0, description="Drop tissue pieces smaller than this.")
    min_hole_area_um2: float = Field(4000.0, ge=0, description="Keep holes at least this big as holes.")


class TilingConfig(Section):
    preset: Literal["pathgen"] | None = Field(
        DEFAULT_PRESET, description="Named geometry (pathgen = 672 px at 0.25 µm/px, the "
                                    "PathGen-1.6M patches); overrides the size keys. A config "
                                    "that sets a size key and no preset drops it: the keys set "
                                    "win, the others keep the pathgen values.")
    patch_size_um: float | None = Field(None, gt=0, description="Patch side in µm.")
    patch_size_px: int | None = Field(None, gt=0, description="Patch side in px at target_mpp "
                                                              "(alternative to patch_size_um).")
    target_mpp: float | None = Field(None, gt=0, description="µm/px the patch is delivered at.")
    target_magnification: float | None = Field(
        None, gt=0, description="Alternative to target_mpp (mpp = 10 / magnification).")
    tissue_threshold: float = Field(0.5, ge=0, le=1,
                                    description="Keep a patch when its tissue fraction >= this.")
    grid_anchor: Literal["tissue", "slide"] = Field(
        "tissue", description="Grid origin: top-left of the tissue ('tissue') or of the slide "
                              "('slide'). Either way one non-overlapping lattice per slide.")
    qc_max_px: int = Field(2048, ge=64, description="Long side of the QC JPEG in px.")
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)

    @model_validator(mode="before")
    @classmethod
    def _size_keys_replace_preset(cls, data):
        if not isinstance(data, dict):
            return data
        if "preset" not in data and any(data.get(k) is not None for k in SIZE_KEYS):
            data = {**data, "preset": None}
        if "preset" in data and data["preset"] is None:  # no named geometry: fill what is unset
            p = PRESETS[DEFAULT_PRESET]
            data = dict(data)
            if data.get("patch_size_um") is None and data.get("patch_size_px") is None:
                data["patch_size_px"] = p["patch_size_px"]
            if data.get("target_mpp") is None and data.get("target_magnification") is None:
                data["target_mpp"] = p["target_mpp"]
        return data

    @model_validator(mode="after")
    def _geometry(self):
        if self.preset is None:
            if self.target_mpp is None and self.target_magnification is None:
                raise ValueError("tiling needs target_mpp or target_magnification")
            if self.patch_size_um is None and self.patch_size_px is None:
                raise ValueError("tiling needs patch_size_um or patch_size_px")
        return self

    def geometry(self) -> tuple[float, float, int]:
        """Return (patch_size_um, target_mpp, patch_size_px_at_target)."""
        if self.preset is not None:
            p = PRESETS[self.preset]
            mpp = p["target_mpp"]
            return p["patch_size_px"] * mpp, mpp, p["patch_size_px"]
        mpp = self.target_mpp if self.target_mpp is not None else 10.0 / self.target_magnification
        if self.patch_size_px is not None:
            return self.patch_size_px * mpp, mpp, self.patch_size_px
        return self.patch_size_um, mpp, int(round(self.patch_size_um / mpp))

    def tag(self) -> str:
        """Folder name carrying the tiling parameters (TRIDENT-style), e.g. '256um_0.5mpp_t50'."""
        um, mpp, _ = self.geometry()
        tag = f"{um:g}um_{mpp:g}mpp_t{int(round(self.tissue_threshold * 100))}"
        return tag if self.grid_anchor == "tissue" else f"{tag}_slidegrid"
