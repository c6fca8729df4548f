"""Tile one slide: open -> resolve mpp -> segment -> grid -> coords HDF5 (+ QC JPEG, GeoJSON)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..config.tiling import TilingConfig
from ..slide_tables import read_mpp_overrides
from ..wsi import open_slide, resolve_mpp
from . import grid
from .conventions import warn_conflicts
from .geojson import write_contours
from .h5io import coords_attrs, write_coords
from .qc import qc_thumbnail, render_qc, write_qc
from .segment import segment_tissue

log = logging.getLogger(__name__)

@dataclass
class TilingResult:
    slide_id: str
    n_patches: int
    mpp: float
    mpp_source: str
    patch_size_level0: int
    tissue_area_mm2: float
    n_regions: int
    seconds: float

def tile_slide(slide_path: str | os.PathLike, out: str | os.PathLike, cfg: TilingConfig | None = None,
               *, qc: str | os.PathLike | None = None, geojson: str | os.PathLike | None = None,
               mpp_override: float | None = None, mpp_override_source: str = "--mpp",
               default_mpp: float | None = None, slide_id: str | None = None) -> TilingResult:
    """Write the coords HDF5 for one slide (and optional QC/GeoJSON); raise SlideError if unusable."""
    t0 = time.perf_counter()
    cfg = cfg or TilingConfig()
    slide_path = Path(slide_path)
    slide_id = slide_id or slide_path.stem
    patch_um, target_mpp, patch_px = cfg.geometry()
    slide = open_slide(slide_path)
    try:
        mpp, source = resolve_mpp(slide, slide_path, override=mpp_override, default=default_mpp,
                                  override_source=mpp_override_source, slide_id=slide_id)
        dims = tuple(int(v) for v in slide.level_dimensions[0])
        pyramid = ([float(d) for d in slide.level_downsamples],
                   [tuple(int(v) for v in d) for d in slide.level_dimensions])
        size0 = grid.patch_size_level0(patch_um, mpp)
        if mpp > target_mpp * 1.05:
            log.warning("%s: slide is %.3f µm/px, coarser than target %.3f: patches will be upsampled",
                        slide_id, mpp, target_mpp)
        tissue = segment_tissue(slide, slide_path, mpp, cfg.segmentation)
        coords, frac = grid.select_patches(tissue.mask, tissue.scale, tissue.region_bboxes(), dims,
                                           size0, cfg.tissue_threshold, cfg.grid_anchor)
        thumb = qc_thumbnail(slide, slide_path, mpp, cfg.qc_max_px) if qc is not None else None
    finally:
        slide.close()
    if size0 > min(dims):
        log.warning("%s: slide %dx%d px is smaller than one patch (%d px): no patches",
                    slide_id, dims[0], dims[1], size0)
    attrs = coords_attrs(
        name=slide_id, save_dir=Path(out).parent, mpp=mpp, mpp_source=source, target_mpp=target_mpp,
        patch_size_um=patch_um, patch_size=patch_px, patch_size_level0=size0, level0_dims=dims,
        level_downsamples=pyramid[0], level_dims=pyramid[1],
        extra={"tissue_threshold": float(cfg.tissue_threshold), "grid_anchor": cfg.grid_anchor,
               "seg_mpp": float(tissue.seg_mpp), "seg_level": int(tissue.level),
               "saturation_threshold": int(tissue.threshold),
               "mean_tissue_fraction": float(frac.mean()) if len(frac) else 0.0})
    write_coords(out, coords, attrs)
    warn_conflicts(out, attrs, log)  # CLAM and TRIDENT would cut different fields from this file
    if geojson is not None:
        write_contours(geojson, tissue.regions, slide_id)
    if qc is not None:
        write_qc(qc, render_qc(tissue, coords, size0, dims, cfg.qc_max_px, thumb))
    res = TilingResult(slide_id, int(len(coords)), mpp, source, size0, tissue.tissue_area_um2 / 1e6,
                       len(tissue.regions), time.perf_counter() - t0)
    log.info("%s: %d patches of %d px at level 0 (%.0f µm; mpp %.4g from %s), tissue %.2f mm² "
             "in %d regions, %.1f s", slide_id, res.n_patches, size0, patch_um, mpp, source,
             res.tissue_area_mm2, res.n_regions, res.seconds)
    return res

def mpp_override_for(cfg, record, table: dict[str, float] | None = None) -> tuple[float | None, str]:
    """Per-slide mpp override for a run: mpp_overrides CSV first, then the sample-sheet column.

    Demo slides carry their mpp in the Aperio header, so the demo record's mpp is not used.
    ``table`` is the parsed mpp_overrides CSV (read here when not given).
    """
    if table is None:
        table = read_mpp_overrides(cfg.slides.mpp_overrides)
    if record.slide_id in table:
        return table[record.slide_id], f"slides.mpp_overrides ({cfg.slides.mpp_overrides})"
    if cfg.slides.sample_sheet is not None and record.mpp is not None:
        return record.mpp, f"sample sheet ({cfg.slides.sample_sheet})"
    return None, ""


def mpp_overrides_for_run(cfg, records) -> dict[str, tuple[float | None, str]]:
    """slide_id -> (override mpp or None, source) for every slide of a run (CSV read once, at
    Snakefile parse): a bad or conflicting row is a ConfigError naming file and line, and ids
    that are not among the run's slides are warned about (file and line of each)."""
    records = list(records)
    table = read_mpp_overrides(cfg.slides.mpp_overrides, known={r.slide_id for r in records})
    return {rec.slide_id: mpp_override_for(cfg, rec, table) for rec in records}
